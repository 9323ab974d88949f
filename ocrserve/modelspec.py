"""What the engine knows about a model before any worker has loaded it (cheap, picklable)."""

from __future__ import annotations

from dataclasses import dataclass

from ocrserve.builtin import BUILTIN_MODELS
from ocrserve.errors import ModelNotFound

__all__ = ["ModelSpec", "builtin_specs"]


@dataclass(frozen=True)
class ModelSpec:
    """A model to serve: its name and version, its task, and where its files come from."""

    name: str
    version: str
    task: str
    #: ``builtin:<name>`` for a bundled model.
    source: str
    #: What TorchServe's describe calls ``modelUrl`` (the archive file name).
    url: str


def builtin_specs(names: tuple[str, ...] = ()) -> list[ModelSpec]:
    """Specs of the bundled models (all of them when ``names`` is empty)."""
    specs = []
    for name in names or tuple(BUILTIN_MODELS):
        if name not in BUILTIN_MODELS:
            raise ModelNotFound(
                f"No bundled model {name!r}; bundled models: {', '.join(sorted(BUILTIN_MODELS))}"
            )
        specs.append(ModelSpec(name, "1.0", BUILTIN_MODELS[name], f"builtin:{name}", f"{name}.mar"))
    return specs
