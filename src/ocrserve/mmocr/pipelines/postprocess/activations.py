"""Float32 activations in numpy for post-processing, so that it runs without torch.

They compute what ``torch.sigmoid`` and ``torch.softmax`` compute, in float32; the results may
differ from PyTorch's vectorised kernels in the last bits (sigmoid 1 ulp, softmax a few), far
inside the parity tolerances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_float32", "as_numpy", "sigmoid", "softmax"]


def as_numpy(array: Any) -> np.ndarray:
    """A numpy array of a numpy array or a (CPU) torch tensor, without importing torch."""
    if hasattr(array, "detach"):
        array = array.detach().cpu().numpy()
    return np.asarray(array)


def as_float32(array: Any) -> np.ndarray:
    """A C-contiguous float32 numpy array of a numpy array or a (CPU) torch tensor."""
    return np.ascontiguousarray(as_numpy(array), dtype=np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-x))`` element-wise, float32."""
    x = as_float32(x)
    with np.errstate(over="ignore"):  # exp(-x) overflows to inf for x < -88: sigmoid 0, as torch
        return np.float32(1) / (np.float32(1) + np.exp(-x))


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    """Softmax along ``axis``, float32, shifted by the maximum as PyTorch's kernel is."""
    x = as_float32(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)
