"""The registries of MMOCR's network parts, and `build_model`.

A config names every part of a model by its MMOCR type (``DBNet``, ``mmdet.ResNet``, ``FPNC``, ...).
Names are exact, scope prefix included: ``mmdet.ResNet`` (mmdet's ResNet, used by DBNet) and
``ResNet`` (MMOCR's own recognition ResNet) are different classes.

Adding an architecture is one module that decorates its classes with ``@REGISTRY.register(...)``
plus one import line in its package's ``__init__`` (the packages are listed in `ARCHITECTURES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ocrserve.registry import Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ARCHITECTURES",
    "BACKBONES",
    "DECODERS",
    "ENCODERS",
    "FUSERS",
    "HEADS",
    "MODELS",
    "NECKS",
    "PREPROCESSORS",
    "build_model",
]

#: Packages whose import registers the architectures (each imports its own modules).
ARCHITECTURES = (
    "ocrserve.mmocr.models.preprocessors",
    "ocrserve.mmocr.models.backbones",
    "ocrserve.mmocr.models.necks",
    "ocrserve.mmocr.models.heads",
    "ocrserve.mmocr.models.encoders",
    "ocrserve.mmocr.models.decoders",
    "ocrserve.mmocr.models.fusers",
    "ocrserve.mmocr.models.detectors",
    "ocrserve.mmocr.models.recognizers",
)

BACKBONES: Registry[nn.Module] = Registry("backbone", ARCHITECTURES)
NECKS: Registry[nn.Module] = Registry("neck", ARCHITECTURES)
HEADS: Registry[nn.Module] = Registry("head", ARCHITECTURES)
PREPROCESSORS: Registry[nn.Module] = Registry("preprocessor", ARCHITECTURES)
ENCODERS: Registry[nn.Module] = Registry("encoder", ARCHITECTURES)
DECODERS: Registry[nn.Module] = Registry("decoder", ARCHITECTURES)
#: ABINet's vision-language fusers.
FUSERS: Registry[nn.Module] = Registry("fuser", ARCHITECTURES)
#: Whole models: text detectors and recognizers.
MODELS: Registry[nn.Module] = Registry("model", ARCHITECTURES)


def build_model(cfg: Mapping[str, Any]) -> nn.Module:
    """Build the network of an MMOCR ``model`` config (the ``model`` dict, not the whole file).

    The module has MMOCR's parameter names, is in eval mode and returns raw outputs; pre- and
    post-processing live in `ocrserve.mmocr.pipelines`.
    """
    model = MODELS.build(cfg)
    model.eval()
    return model
