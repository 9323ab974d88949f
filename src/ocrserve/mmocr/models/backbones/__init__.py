"""Backbones, registered by MMOCR type name on import."""

from __future__ import annotations

from ocrserve.mmocr.models.backbones import (
    nrtr_modality_transform,
    ocr_basic_block,
    ocr_resnet,
    resnet,
    resnet31_ocr,
    resnet_abi,
    shallow_cnn,
    very_deep_vgg,
)

__all__ = [
    "nrtr_modality_transform",
    "ocr_basic_block",
    "ocr_resnet",
    "resnet",
    "resnet31_ocr",
    "resnet_abi",
    "shallow_cnn",
    "very_deep_vgg",
]
