"""mmdet 2.x's test-time image transforms, with mmcv 1.x's numerics.

- ``Resize`` with ``keep_ratio``: scale = ``min(long_max / long_side, short_max / short_side)``
  (up or down), new size ``int(x * scale + 0.5)``, OpenCV bilinear on uint8; ``scale_factor`` is
  ``[new_w / w, new_h / h] * 2`` in float32.
- ``Normalize``: BGR -> RGB (3-channel images only: mmcv's in-place ``cvtColor`` is a no-op on
  one channel), then ``(x - mean) * (1 / std)`` rounded to float32 after each step, as OpenCV.
- ``Pad``: bottom/right to a fixed size or a multiple of ``size_divisor``, constant value.
- ``ImageToTensor`` / ``DefaultFormatBundle``: HWC -> CHW (``model_inference`` turns the former
  into the latter); ``Collect``: the network input and its ``img_metas``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.imaging import lookup_channels
from ocrserve.mmocr.pipelines.compose import TRANSFORMS, Results

__all__ = [
    "Collect",
    "DefaultFormatBundle",
    "Normalize",
    "Pad",
    "RandomFlip",
    "Resize",
    "imrescale",
    "imresize",
    "parse_img_scale",
    "rescale_size",
]

INTERPOLATIONS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def _check_backend(backend: str | None) -> None:
    if backend not in (None, "cv2"):
        raise ConfigError(f"Unsupported resize backend {backend!r}; supported: cv2")


def imresize(img: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """``mmcv.imresize`` (cv2 backend): resize to ``size = (w, h)``.

    Like OpenCV, a ``H x W x 1`` image comes back as ``H x W``.
    """
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(
            f"Unsupported interpolation {interpolation!r}; supported: {', '.join(INTERPOLATIONS)}"
        )
    return cv2.resize(img, size, interpolation=INTERPOLATIONS[interpolation])


def rescale_size(old_size: tuple[int, int], scale: float | Sequence[int]) -> tuple[int, int]:
    """``mmcv.rescale_size``: ``(w, h)`` scaled by a factor, or as large as fits in ``scale``."""
    w, h = old_size
    if isinstance(scale, (int, float)):
        if scale <= 0:
            raise ConfigError(f"Invalid scale {scale}, must be positive")
        factor = float(scale)
    else:
        factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * factor + 0.5), int(h * factor + 0.5)


def imrescale(
    img: np.ndarray, scale: float | Sequence[int], interpolation: str = "bilinear"
) -> np.ndarray:
    """``mmcv.imrescale``: resize keeping the aspect ratio (see `rescale_size`)."""
    h, w = img.shape[:2]
    return imresize(img, rescale_size((w, h), scale), interpolation)


def parse_img_scale(img_scale: Any) -> list[tuple[int, int]] | None:
    """A config's ``img_scale``: one ``(w, h)`` pair or a list of them (JSON makes tuples lists)."""
    if img_scale is None:
        return None
    if isinstance(img_scale, Sequence) and len(img_scale) == 2:
        if all(isinstance(v, (int, float)) for v in img_scale):
            return [(int(img_scale[0]), int(img_scale[1]))]
    if isinstance(img_scale, Sequence) and all(
        isinstance(s, Sequence) and len(s) == 2 for s in img_scale
    ):
        return [(int(s[0]), int(s[1])) for s in img_scale]
    raise ConfigError(f"img_scale must be (w, h) or a list of them, got {img_scale!r}")


@TRANSFORMS.register("Resize")
class Resize:
    """mmdet's ``Resize``, test-time: to ``results["scale"]`` (set by ``MultiScaleFlipAug``) or
    to the single ``img_scale``."""

    def __init__(
        self,
        img_scale: Any = None,
        multiscale_mode: str = "range",
        ratio_range: Sequence[float] | None = None,
        keep_ratio: bool = True,
        bbox_clip_border: bool = True,
        backend: str = "cv2",
        interpolation: str = "bilinear",
        override: bool = False,
    ) -> None:
        _check_backend(backend)
        self.img_scale = parse_img_scale(img_scale)
        if ratio_range is not None:
            raise ConfigError("Resize with ratio_range is random (a training transform)")
        self.keep_ratio = keep_ratio
        self.interpolation = interpolation
        self.override = override

    def _scale(self, results: Results) -> float | tuple[int, int]:
        if "scale" in results and not self.override:
            scale = results["scale"]
            return scale if isinstance(scale, (int, float)) else (int(scale[0]), int(scale[1]))
        if "scale_factor" in results and "scale" not in results:
            h, w = results["img"].shape[:2]
            factor = float(results["scale_factor"])
            return int(w * factor), int(h * factor)
        if not self.img_scale:
            raise ConfigError("Resize needs img_scale (or MultiScaleFlipAug around it)")
        if len(self.img_scale) > 1:
            raise ConfigError("Resize with several img_scale values picks one at random (training)")
        return self.img_scale[0]

    def __call__(self, results: Results) -> Results:
        scale = self._scale(results)
        img = results["img"]
        h, w = img.shape[:2]
        if self.keep_ratio:
            img = imrescale(img, scale, self.interpolation)
        else:
            if isinstance(scale, (int, float)):
                raise ConfigError("Resize with keep_ratio=False needs a (w, h) scale")
            img = imresize(img, scale, self.interpolation)
        new_h, new_w = img.shape[:2]
        w_scale, h_scale = new_w / w, new_h / h
        results["img"] = img
        results["scale"] = scale
        results["img_shape"] = img.shape
        results["pad_shape"] = img.shape
        results["scale_factor"] = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np.float32)
        results["keep_ratio"] = self.keep_ratio
        return results


@TRANSFORMS.register("Normalize")
class Normalize:
    """mmdet's ``Normalize`` via ``mmcv.imnormalize``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True) -> None:
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        self.to_rgb = to_rgb
        self._mean64 = self.mean.astype(np.float64)
        self._stdinv64 = 1 / self.std.astype(np.float64)
        #: The same arithmetic once per uint8 value (256 rows), looked up per pixel.
        self._table = self._apply(np.arange(256)[:, None])

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        if self.to_rgb and img.ndim == 3 and img.shape[2] == 3:
            img = img[:, :, ::-1]
        channels = 1 if img.ndim == 2 else img.shape[2]
        if img.dtype == np.uint8 and channels == self.mean.size:
            out = lookup_channels(img, self._table, planar=False)
            results["img"] = out.reshape(img.shape)
        else:
            results["img"] = np.ascontiguousarray(self._apply(img))
        results["img_norm_cfg"] = {"mean": self.mean, "std": self.std, "to_rgb": self.to_rgb}
        return results

    def _apply(self, img: np.ndarray) -> np.ndarray:
        """mmcv's in-place cv2.subtract / cv2.multiply by the float64 mean and 1 / std: each
        computed in double and stored as float32. Bit-exact matters: DBNet's binary map (a
        steep sigmoid) turns 1 ulp at the input into 1e-4 at the output."""
        diff = (img.astype(np.float64) - self._mean64).astype(np.float32)
        return (diff.astype(np.float64) * self._stdinv64).astype(np.float32)


@TRANSFORMS.register("Pad")
class Pad:
    """mmdet's ``Pad``: bottom/right, to ``size`` or to multiples of ``size_divisor``."""

    def __init__(
        self,
        size: Sequence[int] | None = None,
        size_divisor: int | None = None,
        pad_to_square: bool = False,
        pad_val: float | Mapping[str, float] = 0,
    ) -> None:
        if pad_to_square:
            if size is not None or size_divisor is not None:
                raise ConfigError("Pad: pad_to_square excludes size and size_divisor")
        elif (size is None) == (size_divisor is None):
            raise ConfigError("Pad needs exactly one of size and size_divisor")
        self.size = tuple(size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.pad_val = float(pad_val["img"] if isinstance(pad_val, Mapping) else pad_val)

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        h, w = img.shape[:2]
        if self.pad_to_square:
            target = (max(h, w), max(h, w))
        elif self.size is not None:
            target = (int(self.size[0]), int(self.size[1]))
        else:
            assert self.size_divisor is not None
            d = self.size_divisor
            target = (int(math.ceil(h / d)) * d, int(math.ceil(w / d)) * d)
        if target[0] < h or target[1] < w:
            raise ValueError(f"Pad: image {h}x{w} is larger than the padded size {target}")
        padded = np.full(target + img.shape[2:], self.pad_val, dtype=img.dtype)
        padded[:h, :w] = img
        results["img"] = padded
        results["pad_shape"] = padded.shape
        results["pad_fixed_size"] = self.size
        results["pad_size_divisor"] = self.size_divisor
        return results


@TRANSFORMS.register("RandomFlip")
class RandomFlip:
    """mmdet's ``RandomFlip`` at test time: flips only when a wrapper (``MultiScaleFlipAug``) set
    ``flip``; without one, mmdet's default (``flip_ratio=None``) never flips."""

    def __init__(
        self, flip_ratio: float | None = None, direction: str | Sequence[str] = "horizontal"
    ) -> None:
        if flip_ratio:
            raise ConfigError(
                "RandomFlip: random flips (flip_ratio) are not supported at test time"
            )
        self.direction = direction if isinstance(direction, str) else direction[0]

    def __call__(self, results: Results) -> Results:
        if "flip" not in results:
            results["flip"], results["flip_direction"] = False, None
        if results["flip"]:
            direction = results.get("flip_direction") or self.direction
            axes = {"horizontal": (1,), "vertical": (0,), "diagonal": (0, 1)}[direction]
            results["img"] = np.ascontiguousarray(np.flip(results["img"], axis=axes))
        return results


@TRANSFORMS.register("DefaultFormatBundle", "ImageToTensor")
class DefaultFormatBundle:
    """HWC -> CHW, adding the default metas mmdet's bundle adds when a pipeline set none."""

    def __init__(
        self,
        keys: Sequence[str] = ("img",),
        img_to_float: bool = True,
        pad_val: Mapping[str, float] | None = None,
    ) -> None:
        # ``keys`` is ImageToTensor's; the image always becomes float32 for the network.
        self.keys = list(keys)

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        results.setdefault("pad_shape", img.shape)
        results.setdefault("scale_factor", 1.0)
        channels = 1 if img.ndim < 3 else img.shape[2]
        results.setdefault(
            "img_norm_cfg",
            {
                "mean": np.zeros(channels, dtype=np.float32),
                "std": np.ones(channels, dtype=np.float32),
                "to_rgb": False,
            },
        )
        if img.ndim < 3:
            img = img[:, :, None]
        results["img"] = np.ascontiguousarray(img.transpose(2, 0, 1))
        return results


_DEFAULT_META_KEYS = (
    "filename",
    "ori_filename",
    "ori_shape",
    "img_shape",
    "pad_shape",
    "scale_factor",
    "flip",
    "flip_direction",
    "img_norm_cfg",
)


@TRANSFORMS.register("Collect")
class Collect:
    """The network inputs (``keys``) and the ``img_metas`` dict (``meta_keys``)."""

    def __init__(self, keys: Sequence[str], meta_keys: Sequence[str] = _DEFAULT_META_KEYS) -> None:
        self.keys = list(keys)
        self.meta_keys = list(meta_keys)

    def __call__(self, results: Results) -> Results:
        missing = [k for k in (*self.keys, *self.meta_keys) if k not in results]
        if missing:
            raise ConfigError(f"Collect: the pipeline did not produce {', '.join(missing)}")
        data: Results = {"img_metas": {k: results[k] for k in self.meta_keys}}
        data.update({k: results[k] for k in self.keys})
        return data
