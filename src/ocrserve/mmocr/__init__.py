"""Reading MMOCR's world without mmcv: configs as data, checkpoints without unpickling.

``load_config`` needs no torch; the checkpoint names import torch on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ocrserve.mmocr.config import load_config

if TYPE_CHECKING:
    from ocrserve.mmocr.checkpoint import Checkpoint, check_keys, load_checkpoint, strip_prefix

__all__ = ["Checkpoint", "check_keys", "load_checkpoint", "load_config", "strip_prefix"]

_CHECKPOINT_NAMES = frozenset({"Checkpoint", "check_keys", "load_checkpoint", "strip_prefix"})


def __getattr__(name: str) -> Any:
    if name in _CHECKPOINT_NAMES:
        from ocrserve.mmocr import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
