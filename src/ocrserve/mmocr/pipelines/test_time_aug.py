"""Test-time augmentation wrappers; each gives every result key as a list, one item per variant.

- mmdet's ``MultiScaleFlipAug``: the inner transforms once per ``img_scale`` (or
  ``scale_factor``) and, with ``flip``, per flip direction.
- MMOCR's ``MultiRotateAugOCR``: the inner transforms on the crop and, when it is taller than
  wide (or with ``force_rotate``), on its rotations by ``rotate_degrees`` (anticlockwise).
  Recognizers then keep the variant whose text scores best.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.compose import TRANSFORMS, Results, build_pipeline
from ocrserve.mmocr.pipelines.transforms import parse_img_scale

__all__ = ["MultiRotateAugOCR", "MultiScaleFlipAug"]


def _dict_of_lists(variants: list[Results]) -> Results:
    out: Results = {key: [] for key in variants[0]}
    for data in variants:
        for key, value in data.items():
            out[key].append(value)
    return out


@TRANSFORMS.register("MultiScaleFlipAug")
class MultiScaleFlipAug:
    """Run ``transforms`` per scale and flip."""

    def __init__(
        self,
        transforms: Sequence[Mapping[str, Any]],
        img_scale: Any = None,
        scale_factor: float | Sequence[float] | None = None,
        flip: bool = False,
        flip_direction: str | Sequence[str] = "horizontal",
    ) -> None:
        self.transforms = build_pipeline(transforms)
        if (img_scale is None) == (scale_factor is None):
            raise ConfigError("MultiScaleFlipAug needs exactly one of img_scale and scale_factor")
        self.scale_key = "scale" if img_scale is not None else "scale_factor"
        self.scales: list[Any]
        if img_scale is not None:
            self.scales = list(parse_img_scale(img_scale) or [])
        elif isinstance(scale_factor, (int, float)):
            self.scales = [float(scale_factor)]
        else:
            self.scales = [float(s) for s in scale_factor or []]
        self.flip = flip
        self.flip_direction = (
            [flip_direction] if isinstance(flip_direction, str) else list(flip_direction)
        )

    def __call__(self, results: Results) -> Results:
        flip_args: list[tuple[bool, str | None]] = [(False, None)]
        if self.flip:
            flip_args += [(True, direction) for direction in self.flip_direction]
        variants = []
        for scale in self.scales:
            for flip, direction in flip_args:
                item = dict(results)
                item[self.scale_key] = scale
                item["flip"] = flip
                item["flip_direction"] = direction
                variants.append(self.transforms(item))
        return _dict_of_lists(variants)


@TRANSFORMS.register("MultiRotateAugOCR")
class MultiRotateAugOCR:
    """Run ``transforms`` on the crop and, for tall crops, on its rotations."""

    def __init__(
        self,
        transforms: Sequence[Mapping[str, Any]],
        rotate_degrees: int | Sequence[int] | None = None,
        force_rotate: bool = False,
    ) -> None:
        self.transforms = build_pipeline(transforms)
        self.force_rotate = force_rotate
        if rotate_degrees is None:
            self.rotate_degrees = [0]
        else:
            degrees = [rotate_degrees] if isinstance(rotate_degrees, int) else list(rotate_degrees)
            for degree in degrees:
                if not isinstance(degree, int) or not 0 <= degree < 360 or degree % 90:
                    raise ConfigError(
                        f"MultiRotateAugOCR: rotate_degrees must be multiples of 90 in [0, 360),"
                        f" got {rotate_degrees!r}"
                    )
            self.rotate_degrees = degrees if 0 in degrees else [*degrees, 0]

    def __call__(self, results: Results) -> Results:
        height, width = results["img_shape"][:2]
        degrees = self.rotate_degrees if self.force_rotate or height > width else [0]
        variants = []
        # MMOCR iterates a set of the degrees; Python's set order for these small ints.
        for degree in set(degrees):
            item = dict(results)
            if degree:
                # MMOCR leaves img_shape as it was: ResizeOCR sizes the rotated crop by the
                # unrotated shape.
                item["img"] = np.ascontiguousarray(np.rot90(item["img"], degree // 90))
            variants.append(self.transforms(item))
        return _dict_of_lists(variants)
