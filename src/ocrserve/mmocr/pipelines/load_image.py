"""Loading: the first step of every test pipeline, given an already decoded image.

MMOCR's ``model_inference`` replaces the first step's type with ``LoadImageFromNdarray`` whenever
it is given arrays, which is how its TorchServe handler called it (``mmcv.imfrombytes`` first).
So whatever the config names (``LoadImageFromFile``, ``LoadImageFromLMDB``, ...) the step takes
the decoded BGR uint8 array and only ``color_type`` matters: ``grayscale`` turns a 3-channel image
into ``H x W x 1`` (``cv2.cvtColor`` BGR2GRAY), ``color`` turns a 1-channel image into 3; any
other value (``color_ignore_orientation``, ``unchanged``) leaves the image as it is.

EXIF orientation is applied, or not, when the bytes are decoded, before the pipeline: a predictor
says which through its ``exif_orientation`` attribute (see `exif_orientation_for`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from ocrserve.errors import InvalidInput
from ocrserve.mmocr.pipelines.compose import TRANSFORMS, Results

__all__ = ["LoadImage", "exif_orientation_for"]


def exif_orientation_for(color_type: str) -> bool:
    """Whether loading with ``color_type`` rotates images by EXIF (``mmcv.imread`` semantics)."""
    return "ignore_orientation" not in color_type


@TRANSFORMS.register(
    "LoadImageFromFile", "LoadImageFromNdarray", "LoadImageFromLMDB", "LoadImageFromWebcam"
)
class LoadImage:
    """mmdet/MMOCR image loading, applied to an array in ``results["img"]``."""

    def __init__(
        self,
        to_float32: bool = False,
        color_type: str = "color",
        channel_order: str = "bgr",
        file_client_args: Mapping[str, Any] | None = None,
    ) -> None:
        # channel_order and file_client_args only matter when reading files, never for arrays.
        self.to_float32 = to_float32
        self.color_type = color_type

    def __call__(self, results: Results) -> Results:
        img = results["img"]
        if img.dtype != np.uint8:
            raise InvalidInput(f"Images must be uint8, got {img.dtype}")
        if img.ndim == 2:
            img = img[:, :, None]
        if self.color_type == "grayscale" and img.shape[2] == 3:
            img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)[:, :, None]
        if self.color_type == "color" and img.shape[2] == 1:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        if self.to_float32:
            img = img.astype(np.float32)
        results["filename"] = None
        results["ori_filename"] = None
        results["img"] = img
        results["img_shape"] = img.shape
        results["ori_shape"] = img.shape
        results["img_fields"] = ["img"]
        return results
