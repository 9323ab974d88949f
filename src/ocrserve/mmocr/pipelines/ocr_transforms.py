"""MMOCR's ``ResizeOCR``: resize a text crop to a fixed height, the width following the aspect.

With ``keep_aspect_ratio`` the width is ``ceil(height / h * w)``, rounded (Python ``round``) to a
multiple of ``1 / width_downsample_ratio`` (16 by default) when not one already, at least
``min_width``; with ``max_width`` it is capped there and the image padded on the right to
``max_width`` (``valid_ratio`` = width / max_width). Without ``keep_aspect_ratio`` the crop is
stretched to ``max_width``. ``img_shape`` becomes the resized (unpadded) shape, as in MMOCR.

``ToTensorOCR`` and ``NormalizeOCR`` are torchvision's ``to_tensor`` (``/ 255``, channels as loaded:
BGR) and ``normalize`` (``(x - mean) / std``), computed with the same float32 operations in
numpy (IEEE division and subtraction: bit for bit what torch computes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.compose import TRANSFORMS, Results
from ocrserve.mmocr.pipelines.transforms import imresize

__all__ = ["NormalizeOCR", "ResizeOCR", "ToTensorOCR", "impad"]

_BORDERS = {
    "constant": cv2.BORDER_CONSTANT,
    "edge": cv2.BORDER_REPLICATE,
    "reflect": cv2.BORDER_REFLECT_101,
    "symmetric": cv2.BORDER_REFLECT,
}


def impad(
    img: np.ndarray, shape: tuple[int, int], pad_val: float = 0, padding_mode: str = "constant"
) -> np.ndarray:
    """``mmcv.impad`` to ``shape = (h, w)``: pad bottom and right."""
    if padding_mode not in _BORDERS:
        raise ConfigError(
            f"Unsupported padding_mode {padding_mode!r}; supported: {', '.join(_BORDERS)}"
        )
    bottom, right = shape[0] - img.shape[0], shape[1] - img.shape[1]
    if bottom < 0 or right < 0:
        raise ValueError(f"Cannot pad an image of shape {img.shape} to {shape}")
    return cv2.copyMakeBorder(  # type: ignore[call-overload]
        img, 0, bottom, 0, right, _BORDERS[padding_mode], value=pad_val
    )


def _first(value: Any) -> Any:
    # Multi-scale values (tuples) pick per distributed rank; inference is rank 0.
    return value[0] if isinstance(value, (list, tuple)) else value


@TRANSFORMS.register("ResizeOCR")
class ResizeOCR:
    """Resize (and maybe pad) a text crop to ``height`` pixels."""

    def __init__(
        self,
        height: int | Sequence[int],
        min_width: int | Sequence[int] | None = None,
        max_width: int | Sequence[int] | None = None,
        keep_aspect_ratio: bool = True,
        img_pad_value: float = 0,
        width_downsample_ratio: float = 1.0 / 16,
        backend: str | None = None,
        padding_mode: str = "constant",
    ) -> None:
        if backend not in (None, "cv2"):
            raise ConfigError(f"ResizeOCR: unsupported backend {backend!r}; supported: cv2")
        if not keep_aspect_ratio and max_width is None:
            raise ConfigError('ResizeOCR: "max_width" must be set if "keep_aspect_ratio" is False')
        self.height = int(_first(height))
        self.min_width = _first(min_width)
        self.max_width = _first(max_width)
        self.keep_aspect_ratio = keep_aspect_ratio
        self.img_pad_value = img_pad_value
        self.width_downsample_ratio = width_downsample_ratio
        self.padding_mode = padding_mode

    def __call__(self, results: Results) -> Results:
        ori_height, ori_width = results["img_shape"][:2]
        img = results["img"]
        valid_ratio = 1.0
        if self.keep_aspect_ratio:
            new_width = math.ceil(float(self.height) / ori_height * ori_width)
            width_divisor = int(1 / self.width_downsample_ratio)
            if new_width % width_divisor != 0:
                new_width = round(new_width / width_divisor) * width_divisor
            if self.min_width is not None:
                new_width = max(self.min_width, new_width)
            if self.max_width is not None:
                valid_ratio = min(1.0, 1.0 * new_width / self.max_width)
                resized = imresize(img, (min(self.max_width, new_width), self.height))
                resize_shape = pad_shape = resized.shape
                if new_width < self.max_width:
                    resized = impad(
                        resized,
                        (self.height, self.max_width),
                        self.img_pad_value,
                        self.padding_mode,
                    )
                    pad_shape = resized.shape
            else:
                resized = imresize(img, (new_width, self.height))
                resize_shape = pad_shape = resized.shape
        else:
            resized = imresize(img, (self.max_width, self.height))
            resize_shape = pad_shape = resized.shape
        results["img"] = resized
        results["img_shape"] = resize_shape
        results["resize_shape"] = resize_shape
        results["pad_shape"] = pad_shape
        results["valid_ratio"] = valid_ratio
        return results


@TRANSFORMS.register("ToTensorOCR")
class ToTensorOCR:
    """HWC uint8 -> CHW float32 in [0, 1] (torchvision ``to_tensor``; no colour conversion)."""

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        if img.ndim == 2:
            img = img[:, :, None]
        chw = np.ascontiguousarray(img.transpose(2, 0, 1))
        if chw.dtype == np.uint8:  # IEEE float32 division, as torch's ``div(255)``
            chw = chw.astype(np.float32) / np.float32(255)
        results["img"] = chw
        return results


@TRANSFORMS.register("NormalizeOCR")
class NormalizeOCR:
    """Per-channel ``(x - mean) / std`` on a CHW float image (torchvision ``normalize``)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = list(mean)
        self.std = list(std)
        if any(s == 0 for s in self.std):
            raise ConfigError(f"NormalizeOCR: std must not contain zeros, got {self.std}")

    def __call__(self, results: Results) -> Results:
        img = np.array(results["img"], dtype=np.float32)
        mean = np.asarray(self.mean, dtype=np.float32).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=np.float32).reshape(-1, 1, 1)
        results["img"] = (img - mean) / std
        results["img_norm_cfg"] = {"mean": self.mean, "std": self.std}
        return results
