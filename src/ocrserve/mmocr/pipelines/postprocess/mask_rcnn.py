"""Mask R-CNN's masks -> text boundaries: mmdet 2.28's mask pasting, then MMOCR's ``seg2boundary``.

Input: one image's ``OCRMaskRCNN`` output (`ocrserve.mmocr.models.detectors.mask_rcnn`):
detections (boxes and score), labels, each detection's 28 x 28 mask probabilities, the boxes to
paste them into and the original image's shape. Only class 0 becomes boundaries
(``OCRMaskRCNN.get_boundary`` reads ``results[0][0]`` and ``results[1][0]``), in detection order.

Pasting is ``_do_paste_mask`` as mmdet runs it on the CPU (one mask at a time, ``skip_empty``):
over the box's pixels widened by one and clipped to the image, each pixel centre is mapped into
the mask (``(p + 0.5 - x0) / (x1 - x0) * 2 - 1``, infinite values set to 0) and sampled as
``torch.nn.functional.grid_sample`` does (bilinear, zero padding, ``align_corners=False``), in the
same float32 operations (torch's vectorised CPU kernel is compiled with fused multiply-adds
for the unnormalisation and the weighted sum, on AVX2 and AVX-512 alike; they are emulated here,
which makes the result bit-equal to it). A pixel is text when the sample is
``>= mask_thr_binary``. A mask's text pixels then give a ``quad`` (minimum-area rectangle over
all of them) or a ``poly`` (the first external contour), with the detection's score; masks
without pixels, and contours under 4 points, give no boundary. Boundaries are in the original
image's pixels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS
from ocrserve.mmocr.pipelines.postprocess.db import points2boundary

__all__ = ["MaskRCNNPostprocessor", "paste_mask"]

_F32 = np.float32


def _fma(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``a * b + c`` rounded once to float32, as a fused multiply-add (the float32 product is
    exact in float64)."""
    return (a.astype(np.float64) * b.astype(np.float64) + c).astype(_F32)


def _source_index(coord: np.ndarray, size: int) -> np.ndarray:
    """grid_sample's unnormalisation with ``align_corners=False``: ``(c + 1) * size / 2 - 0.5``."""
    return _fma(coord + _F32(1), np.asarray(size / 2, _F32), np.asarray(-0.5, _F32))


def _axis(coord: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis: (index below, its weight, index above, its weight); -1 marks outside."""
    src = _source_index(coord, size)
    low = np.floor(src)
    frac = src - low
    low_i = np.where(np.isfinite(low), low, -2).astype(np.int64)
    high_i = low_i + 1
    low_i = np.where((low_i >= 0) & (low_i < size), low_i, -1)
    high_i = np.where((high_i >= 0) & (high_i < size), high_i, -1)
    return low_i, _F32(1) - frac, high_i, frac


def paste_mask(
    mask: np.ndarray, box: np.ndarray, img_h: int, img_w: int
) -> tuple[np.ndarray, int, int]:
    """Sample one ``S x S`` probability mask over its box: ``(probabilities, y0, x0)``, the
    region pasted and its top-left corner in the image."""
    x0, y0, x1, y1 = (_F32(v) for v in box[:4])
    x0_int = max(int(math.floor(x0)) - 1, 0)
    y0_int = max(int(math.floor(y0)) - 1, 0)
    x1_int = min(int(math.ceil(x1)) + 1, img_w)
    y1_int = min(int(math.ceil(y1)) + 1, img_h)
    with np.errstate(divide="ignore", invalid="ignore"):
        img_y = np.arange(y0_int, y1_int).astype(_F32) + _F32(0.5)
        img_x = np.arange(x0_int, x1_int).astype(_F32) + _F32(0.5)
        img_y = (img_y - y0) / (y1 - y0) * _F32(2) - _F32(1)
        img_x = (img_x - x0) / (x1 - x0) * _F32(2) - _F32(1)
    img_y[np.isinf(img_y)] = 0
    img_x[np.isinf(img_x)] = 0
    src = np.asarray(mask, dtype=_F32)
    height, width = src.shape
    y_n, s, y_s, n = _axis(img_y, height)
    x_w, e, x_e, w = _axis(img_x, width)
    padded = np.zeros((height + 1, width + 1), dtype=_F32)  # index -1 reads the zero border
    padded[:height, :width] = src

    def corner(ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
        return padded[ys[:, None], xs[None, :]]

    out = corner(y_n, x_w) * (s[:, None] * e[None, :])
    out = _fma(corner(y_n, x_e), s[:, None] * w[None, :], out)
    out = _fma(corner(y_s, x_w), n[:, None] * e[None, :], out)
    out = _fma(corner(y_s, x_e), n[:, None] * w[None, :], out)
    # NaN coordinates (a box of no width) sample nothing, as grid_sample's masks do.
    out[~np.isfinite(out)] = 0
    return out, y0_int, x0_int


@POSTPROCESSORS.register("MaskRCNNPostprocessor")
class MaskRCNNPostprocessor:
    """``OCRMaskRCNN`` output of one image -> ``[[x1, y1, ..., score], ...]`` (original pixels)."""

    def __init__(self, text_repr_type: str = "quad", mask_thr_binary: float = 0.5) -> None:
        if text_repr_type not in ("quad", "poly"):
            raise ConfigError(f"MaskRCNNPostprocessor: text_repr_type {text_repr_type!r}")
        if mask_thr_binary < 0:
            raise ConfigError("MaskRCNNPostprocessor: mask_thr_binary must be >= 0")
        self.text_repr_type = text_repr_type
        self.mask_thr_binary = float(mask_thr_binary)

    def __call__(self, output: Any) -> list[list[float]]:
        dets, labels, probs, paste, count, ori_shape = (np.asarray(o) for o in output)
        img_h, img_w = int(ori_shape[0]), int(ori_shape[1])
        boundaries = []
        for i in range(int(count)):
            if int(labels[i]) != 0:
                continue
            region, y0, x0 = paste_mask(probs[i], paste[i], img_h, img_w)
            ys, xs = np.nonzero(region >= self.mask_thr_binary)
            if ys.size == 0:
                continue
            points = np.stack([xs + x0, ys + y0], axis=1)
            boundary = points2boundary(points, self.text_repr_type, float(dets[i, 4]))
            if boundary is not None:
                boundaries.append(boundary)
        return boundaries
