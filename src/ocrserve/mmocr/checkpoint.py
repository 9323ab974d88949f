"""Read MMOCR checkpoints safely: ``torch.load(weights_only=True)`` or safetensors, never pickle.

An MMOCR checkpoint is ``{"meta": {...}, "state_dict": {...}, "optimizer": {...}}`` (mmcv's
``save_checkpoint``) or a bare state dict; keys may carry DataParallel's ``module.`` prefix.
Which part holds the weights follows mmcv's ``_load_checkpoint_to_model``:
https://github.com/open-mmlab/mmcv/blob/v1.7.2/mmcv/runner/checkpoint.py
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ocrserve.errors import CheckpointError

__all__ = ["Checkpoint", "check_keys", "load_checkpoint", "strip_prefix"]

_SHOWN_KEYS = 20  # keys listed per kind in a key-mismatch error


@dataclass(frozen=True)
class Checkpoint:
    """Weights by parameter name, and the checkpoint's ``meta`` (plain Python values)."""

    state_dict: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)


def load_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Load a ``.pth`` (MMOCR or bare state dict) or ``.safetensors`` file onto the CPU."""
    file = Path(path)
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file} not found")
    if file.suffix == ".safetensors":
        state_dict, meta = _load_safetensors(file)
    else:
        state_dict, meta = _split(file, _torch_load(file))
    return Checkpoint(state_dict=strip_prefix(state_dict), meta=dict(_plain(meta)))


def strip_prefix(
    state_dict: dict[str, torch.Tensor], prefix: str = "module."
) -> dict[str, torch.Tensor]:
    """Drop ``prefix`` from the keys that start with it (mmcv strips ``^module\\.``)."""
    return {(k[len(prefix) :] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def check_keys(model_keys: Iterable[str], ckpt_keys: Iterable[str]) -> None:
    """Raise ``CheckpointError`` listing missing and unexpected keys unless the sets are equal."""
    expected, found = set(model_keys), set(ckpt_keys)
    missing, unexpected = sorted(expected - found), sorted(found - expected)
    if not missing and not unexpected:
        return
    parts = [
        f"{len(keys)} {kind} key{'s' if len(keys) > 1 else ''}: {_listing(keys)}"
        for kind, keys in (("missing", missing), ("unexpected", unexpected))
        if keys
    ]
    raise CheckpointError(f"checkpoint does not match the model: {'; '.join(parts)}")


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_SHOWN_KEYS])
    more = len(keys) - _SHOWN_KEYS
    return shown + (f", ... and {more} more" if more > 0 else "")


def _numpy_scalar_globals() -> list[Callable[..., Any] | tuple[Callable[..., Any], str]]:
    """NumPy scalars in ``meta`` (mmcv stores ``seed = np.random.randint(...)``, eval scores).

    Pickles name the scalar constructor ``numpy.core...`` (NumPy 1.x) or ``numpy._core...`` (2.x);
    rebuilding a dtype needs its class (``numpy.dtypes.Int64DType``, ...). Arrays stay refused.
    """
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:  # NumPy < 1.26
        multiarray = importlib.import_module("numpy.core.multiarray")
    scalar = multiarray.scalar
    dtypes = {type(np.dtype(kind)) for kind in "?bhilqBHILQefd"}
    return [
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        (np.dtype, "numpy.dtype"),
        *sorted(dtypes, key=str),
    ]


def _torch_load(file: Path) -> Any:
    try:
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{file} contains Python objects that cannot be loaded safely (weights_only=True "
            f"refused: {_refusal(exc)}); re-save it as a plain state dict or safetensors"
        ) from None
    except Exception as exc:  # torch reports a damaged file as KeyError, EOFError, RuntimeError...
        reason = str(exc).strip() or type(exc).__name__
        raise CheckpointError(f"{file} is not a readable PyTorch checkpoint: {reason}") from None


def _refusal(exc: Exception) -> str:
    """What was refused, from torch's long weights-only message (without its unsafe advice)."""
    text = str(exc).partition("WeightsUnpickler error:")[2] or str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0].split(" Please use")[0] if lines else type(exc).__name__


def _split(file: Path, obj: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The state dict and meta of what ``torch.load`` returned."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{file} holds a {type(obj).__name__}, not a checkpoint dict")
    meta: Any = {}
    if "state_dict" in obj:
        state_dict, meta = obj["state_dict"], obj.get("meta") or {}
    else:
        state_dict = obj
    if not isinstance(meta, dict):
        raise CheckpointError(f"{file}: 'meta' is a {type(meta).__name__}, not a dict")
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{file}: 'state_dict' is a {type(state_dict).__name__}, not a dict")
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            kind = type(value).__name__
            raise CheckpointError(
                f"{file}: not a state dict ({key!r} holds a {kind}, not a tensor)"
            )
    return dict(state_dict), meta


def _load_safetensors(file: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise CheckpointError(
            f"{file}: reading .safetensors needs `pip install safetensors`"
        ) from None
    try:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            meta = dict(handle.metadata() or {})
            return {key: handle.get_tensor(key) for key in handle.keys()}, meta
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from None


def _plain(value: Any) -> Any:
    """``meta`` with NumPy scalars as Python numbers (OrderedDicts and tuples stay as they are)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return type(value)((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value
