"""Test pipelines as MMOCR's configs state them: a list of transforms, built by type name.

A transform takes and returns MMOCR's ``results`` dict (``img``, ``img_shape``, ``scale_factor``,
...). A test pipeline ends in ``Collect``, giving ``{"img": CHW array, "img_metas": dict}``, or,
under a test-time augmentation wrapper, the same with a list per key; `to_samples` turns either
into one `Sample` per augmentation.

`select_test_pipeline` picks the pipeline from a config exactly as MMOCR 0.x's
``model_inference`` does (``data.test.pipeline``, else the first test dataset's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ocrserve.errors import ConfigError
from ocrserve.registry import Registry

__all__ = [
    "TRANSFORMS",
    "Compose",
    "Results",
    "Sample",
    "Transform",
    "build_pipeline",
    "select_test_pipeline",
    "to_samples",
]

#: MMOCR's per-image pipeline state.
Results = dict[str, Any]
Transform = Callable[[Results], Results]

#: Pipeline transforms by MMOCR/mmdet type name, registered by these modules.
TRANSFORMS: Registry[Transform] = Registry(
    "pipeline transform",
    (
        "ocrserve.mmocr.pipelines.load_image",
        "ocrserve.mmocr.pipelines.transforms",
        "ocrserve.mmocr.pipelines.ocr_transforms",
        "ocrserve.mmocr.pipelines.test_time_aug",
    ),
)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, results: Results) -> Results:
        for transform in self.transforms:
            results = transform(results)
        return results


def build_pipeline(cfg_list: Sequence[Mapping[str, Any]]) -> Compose:
    """Build a pipeline from its config list; unknown types raise `ConfigError` naming the known."""
    if isinstance(cfg_list, (str, bytes, Mapping)) or not isinstance(cfg_list, Sequence):
        raise ConfigError(f"A pipeline must be a list of transform dicts, got {cfg_list!r}")
    return Compose([TRANSFORMS.build(cfg) for cfg in cfg_list])


def _is_2dlist(x: Any) -> bool:
    # MMOCR's is_2dlist: a list of lists, or an empty list.
    return isinstance(x, list) and all(isinstance(item, list) for item in x)


def select_test_pipeline(cfg: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The test pipeline of a whole config, chosen as MMOCR 0.x's ``model_inference`` chooses it.

    ``data.test.pipeline``; if that is None, the pipeline of the first of ``data.test.datasets``
    (of the first group, for a list of lists); a list of pipelines gives its first. A config
    without ``data.test`` (which MMOCR could not run) falls back to ``test_pipeline``.
    """
    test = (cfg.get("data") or {}).get("test")
    if not isinstance(test, Mapping):
        pipeline = cfg.get("test_pipeline")
        if pipeline is None:
            raise ConfigError("The config has neither data.test nor test_pipeline")
    else:
        pipeline = test.get("pipeline")
        if pipeline is None:
            datasets = test.get("datasets") or []
            if not datasets:
                raise ConfigError("data.test has no pipeline and no datasets to take one from")
            first = datasets[0][0] if _is_2dlist(datasets) else datasets[0]
            pipeline = first.get("pipeline")
        if _is_2dlist(pipeline):
            pipeline = pipeline[0]
    if not isinstance(pipeline, list) or not pipeline:
        raise ConfigError(f"The test pipeline must be a non-empty list, got {pipeline!r}")
    return [dict(step) for step in pipeline]


@dataclass
class Sample:
    """One (augmented) network input: ``img`` is C x H x W float32, ``meta`` its img_metas."""

    img: np.ndarray
    meta: dict[str, Any]


def to_samples(data: Results) -> list[Sample]:
    """A pipeline's output -> one `Sample` per test-time augmentation (one without any)."""
    if "img" not in data or "img_metas" not in data:
        raise ConfigError("The test pipeline must end with Collect(keys=['img'], ...)")
    imgs, metas = data["img"], data["img_metas"]
    if not isinstance(imgs, list):
        imgs, metas = [imgs], [metas]
    return [
        Sample(np.ascontiguousarray(img, dtype=np.float32), dict(meta))
        for img, meta in zip(imgs, metas)
    ]
