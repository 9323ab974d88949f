"""What the engine knows about a model before any worker has loaded it (cheap, picklable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ModelSpec"]


@dataclass(frozen=True)
class ModelSpec:
    """A model to serve: its name and version, its task, and where its files are."""

    name: str
    version: str
    task: str
    #: The folder the archive was extracted to (read by the worker).
    model_dir: str
    #: What TorchServe's describe calls ``modelUrl`` (the archive as it was named).
    url: str
    #: Which weights the model serves (the manifest's ``weights``, else its weight file's name).
    weights: str = ""
    #: The request options the archive pins (`ocrserve.options`), typed.
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    #: The manifest's ``quantization`` (``ocrserve archive --quantize int8``), else empty.
    quantization: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
