"""Post-processing: network outputs -> MMOCR's results (boundaries, text and scores).

Two registries by MMOCR type name: detection postprocessors and label convertors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ocrserve.registry import Registry

if TYPE_CHECKING:
    from ocrserve.mmocr.pipelines.postprocess.convertor import BaseConvertor

__all__ = ["CONVERTORS", "POSTPROCESSORS", "build_convertor", "build_postprocessor"]

#: Modules that register post-processing (one per architecture family).
POSTPROCESSING = (
    "ocrserve.mmocr.pipelines.postprocess.db",
    "ocrserve.mmocr.pipelines.postprocess.fce",
    "ocrserve.mmocr.pipelines.postprocess.pan",
    "ocrserve.mmocr.pipelines.postprocess.pse",
    "ocrserve.mmocr.pipelines.postprocess.textsnake",
    "ocrserve.mmocr.pipelines.postprocess.mask_rcnn",
    "ocrserve.mmocr.pipelines.postprocess.drrg",
    "ocrserve.mmocr.pipelines.postprocess.ctc",
    "ocrserve.mmocr.pipelines.postprocess.attn",
    "ocrserve.mmocr.pipelines.postprocess.seg",
)

#: Text detection: head output of one image -> ``[[x1, y1, ..., xn, yn, score], ...]``.
POSTPROCESSORS: Registry[Callable[[Any], list[list[float]]]] = Registry(
    "postprocessor", POSTPROCESSING
)
#: Text recognition: decoder output -> character indexes and scores -> text.
CONVERTORS: Registry[BaseConvertor] = Registry("label convertor", POSTPROCESSING)


def build_postprocessor(cfg: Mapping[str, Any]) -> Callable[[Any], list[list[float]]]:
    """A detection postprocessor from its MMOCR config (``{"type": "DBPostprocessor", ...}``)."""
    return POSTPROCESSORS.build(cfg)


def build_convertor(cfg: Mapping[str, Any], base_dir: str | Path | None = None) -> BaseConvertor:
    """A label convertor from its MMOCR config.

    A relative ``dict_file`` is looked up as MMOCR did (from the working directory) and, failing
    that, next to the config file (``base_dir``), which is where archived models keep it.
    """
    dict_file = cfg.get("dict_file")
    if dict_file is not None and base_dir is not None:
        path = Path(dict_file)
        if not path.is_absolute() and not path.exists() and (Path(base_dir) / path).exists():
            cfg = {**cfg, "dict_file": str(Path(base_dir) / path)}
    return CONVERTORS.build(cfg)
