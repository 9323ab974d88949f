"""MMOCR 0.x's ``FCEPostprocessor`` (with ``FCEHead.get_boundary``): Fourier maps -> polygons.

Per level (its ``scale``): softmax of the text-region and centre-line logit pairs (torch), score
``region ** alpha * centre ** beta``, mask ``score > score_thr`` with holes filled; for each
outer or inner contour of it, every pixel inside with a positive score proposes a polygon: its
Fourier coefficients (real ``x``, imaginary ``y``) with the pixel added to the constant term,
times ``scale``, inverted with ``ifft`` into ``num_reconstr_points`` integer points. Proposals
go through polygon NMS (IoU > ``nms_thr`` removed, highest score first) per contour, per level
and across levels. Output: ``[x1, y1, ..., x50, y50, score]`` in input pixels.

MMOCR 0.6.3 computes the ``quad`` form and then returns the polygons anyway; so does this.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable, Sequence
from typing import Any, cast

import cv2
import numpy as np
from numpy.fft import ifft
from shapely.geometry import Polygon

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import POSTPROCESSORS

__all__ = ["FCEPostprocessor", "fill_hole", "fourier2poly", "poly_nms"]


def fill_hole(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every region not connected to the border set (MMOCR's ``fill_hole``)."""
    h, w = mask.shape
    canvas = np.zeros((h + 2, w + 2), np.uint8)
    canvas[1 : h + 1, 1 : w + 1] = mask
    flood = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(canvas, flood, (0, 0), (1,))
    return ~canvas[1 : h + 1, 1 : w + 1].astype(bool) | mask


def fourier2poly(coeff: np.ndarray, num_points: int = 50) -> np.ndarray:
    """Fourier coefficients ``n x (2k + 1)`` (degree ``-k..k``) -> ``n x 2 num_points`` int32."""
    a = np.zeros((len(coeff), num_points), dtype="complex")
    k = (len(coeff[0]) - 1) // 2
    a[:, 0 : k + 1] = coeff[:, k:]
    a[:, -k:] = coeff[:, :k]
    poly = ifft(a) * num_points
    out = np.zeros((len(coeff), num_points, 2))
    out[:, :, 0] = poly.real
    out[:, :, 1] = poly.imag
    return out.astype("int32").reshape((len(coeff), -1))


def _libm_powf() -> Callable[[float, float], float] | None:
    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
    except OSError:
        return None
    powf = libm.powf
    powf.restype = ctypes.c_float
    powf.argtypes = [ctypes.c_float, ctypes.c_float]
    return cast("Callable[[float, float], float]", powf)


_POWF = _libm_powf()


def _powf(x: np.ndarray, exponent: float, where: np.ndarray | None = None) -> np.ndarray:
    """``x ** exponent`` (float32) as MMOCR's numpy computed it: C's ``powf``, float exponent.

    numpy's AVX-512 float32 power can be 1 ulp off libm, and 1 ulp reorders NMS ties. The power
    in double precision rounded to float32 agrees with ``powf`` almost everywhere; where it
    matters (``where``), the value comes from libm's ``powf`` itself.
    """
    exp32 = float(np.float32(exponent))
    out = (x.astype(np.float64) ** exp32).astype(np.float32)
    if _POWF is not None and where is not None:
        out[where] = np.array([_POWF(float(v), exp32) for v in x[where]], dtype=np.float32)
    return out


def _valid(poly: Polygon) -> Polygon:
    return poly if poly.is_valid else poly.buffer(0)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """MMOCR's ``boundary_iou(a, b, zero_division=1)`` (invalid polygons repaired by buffer(0))."""
    pa, pb = _valid(Polygon(a.reshape(-1, 2))), _valid(Polygon(b.reshape(-1, 2)))
    inter = pa.intersection(pb).area if pa.is_valid and pb.is_valid else None
    union = pa.union(pb).area if pa.is_valid and pb.is_valid else None
    if inter is None or union is None:
        raise ValueError("polygon NMS: a polygon stayed invalid after buffer(0)")
    return float(inter / union) if union != 0 else 1.0


def poly_nms(polygons: list[list[float]], threshold: float) -> list[list[float]]:
    """Keep the best-scoring polygon, drop those overlapping it by IoU > ``threshold``, repeat."""
    if not polygons:
        return []
    ordered = np.array(sorted(polygons, key=lambda p: p[-1]))
    index = list(range(len(ordered)))
    keep: list[list[float]] = []
    while index:
        best = index.pop()
        keep.append(ordered[best].tolist())
        a = ordered[best][:-1]
        index = [i for i in index if not _iou(a, ordered[i][:-1]) > threshold]
    return keep


@POSTPROCESSORS.register("FCEPostprocessor")
class FCEPostprocessor:
    """Decode FCEHead's per-level ``(cls 4 x H x W, reg (4k + 2) x H x W)`` maps."""

    def __init__(
        self,
        fourier_degree: int,
        num_reconstr_points: int,
        text_repr_type: str = "poly",
        alpha: float = 1.0,
        beta: float = 2.0,
        score_thr: float = 0.3,
        nms_thr: float = 0.1,
        scales: Sequence[int] = (8, 16, 32),
        **kwargs: Any,
    ) -> None:
        if text_repr_type not in ("poly", "quad"):
            raise ConfigError(
                f"FCEPostprocessor: text_repr_type must be 'poly' or 'quad', got {text_repr_type!r}"
            )
        self.fourier_degree = fourier_degree
        self.num_reconstr_points = num_reconstr_points
        self.text_repr_type = text_repr_type
        self.alpha = alpha
        self.beta = beta
        self.score_thr = score_thr
        self.nms_thr = nms_thr
        self.scales = tuple(scales)

    def __call__(self, preds: Sequence[Sequence[np.ndarray]]) -> list[list[float]]:
        if len(preds) != len(self.scales):
            raise ValueError(
                f"FCEPostprocessor expects {len(self.scales)} levels, got {len(preds)}"
            )
        boundaries: list[list[float]] = []
        for (cls_pred, reg_pred), scale in zip(preds, self.scales):
            boundaries = boundaries + self.decode_level(cls_pred, reg_pred, scale)
        return poly_nms(boundaries, self.nms_thr)

    def decode_level(
        self, cls_pred: np.ndarray, reg_pred: np.ndarray, scale: int
    ) -> list[list[float]]:
        k = self.fourier_degree
        if cls_pred.shape[0] != 4 or reg_pred.shape[0] != 4 * k + 2:
            raise ValueError("FCEPostprocessor: level maps do not match the Fourier degree")
        # torch's softmax, imported here: FCENet serves on PyTorch only (`REFUSED` for ONNX),
        # and its polygon NMS is sensitive to the last bit of these scores.
        import torch

        cls = torch.from_numpy(np.ascontiguousarray(cls_pred, dtype=np.float32))
        tr_pred = cls[0:2].softmax(dim=0).numpy()
        tcl_pred = cls[2:].softmax(dim=0).numpy()
        reg = np.ascontiguousarray(reg_pred, dtype=np.float32).transpose(1, 2, 0)
        x_pred, y_pred = reg[:, :, : 2 * k + 1], reg[:, :, 2 * k + 1 :]
        score_pred = _powf(tr_pred[1], self.alpha) * _powf(tcl_pred[1], self.beta)
        near = score_pred > np.float32(self.score_thr * (1 - 1e-5))
        score_pred = _powf(tr_pred[1], self.alpha, near) * _powf(tcl_pred[1], self.beta, near)
        tr_mask = fill_hole(score_pred > self.score_thr)
        inside = tr_mask & ~near
        if inside.any():  # filled holes: their scores count too
            score_pred[inside] = (
                _powf(tr_pred[1], self.alpha, inside) * _powf(tcl_pred[1], self.beta, inside)
            )[inside]
        contours, _ = cv2.findContours(
            tr_mask.astype(np.uint8), cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE
        )
        empty = np.zeros(tr_mask.shape, dtype=np.int8)
        boundaries: list[list[float]] = []
        for contour in contours:
            deal_map = empty.copy()
            cv2.drawContours(deal_map, [contour], -1, (1,), -1)
            score_map = score_pred * deal_map
            score_mask = score_map > 0
            xy_text = np.argwhere(score_mask)
            dxy = xy_text[:, 1] + xy_text[:, 0] * 1j
            c = x_pred[score_mask] + y_pred[score_mask] * 1j
            c[:, k] = c[:, k] + dxy
            c *= scale
            polygons = fourier2poly(c, self.num_reconstr_points)
            score = score_map[score_mask].reshape(-1, 1)
            boundaries = boundaries + poly_nms(np.hstack((polygons, score)).tolist(), self.nms_thr)
        return poly_nms(boundaries, self.nms_thr)
