"""MMOCR models served from an ONNX file and their config alone: no torch, no weights.

An ``ocrserve archive --runtime onnx`` archive holds the config (its test pipeline), the network
as ONNX, any dictionary file, and the manifest's ``serving`` section: what the PyTorch model
decided when it was built at archive time and the post-processing needs (`serving_spec`):

- text detection: ``{"postprocessor": {...}, "downsample_ratio": f, "result_has_filename": b}``,
  the head's postprocessor config as MMOCR resolves it (head defaults and legacy keys);
- text recognition: ``{"label_convertor": {...}}``, with the recognizer's ``max_seq_len``.

`OnnxMMOCRPredictor` runs the same numpy/OpenCV pipeline and post-processing as `MMOCRPredictor`,
with ONNX Runtime in the middle, and returns the same result dicts (see `MMOCRPredictor` for what
they are). Nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ocrserve.errors import ArchiveError, ConfigError, InvalidInput
from ocrserve.mmocr.models.valid_ratio import valid_ratio_of, with_valid_ratio
from ocrserve.mmocr.onnx_export import OnnxNetwork, load_onnx_network
from ocrserve.mmocr.pipelines import Sample, build_pipeline, select_test_pipeline, to_samples
from ocrserve.mmocr.pipelines.load_image import exif_orientation_for
from ocrserve.mmocr.pipelines.postprocess import build_convertor, build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.db import rescale_boundaries

if TYPE_CHECKING:
    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

__all__ = ["SERVING_KEY", "OnnxMMOCRPredictor", "serving_spec", "takes_aug_test"]

#: The manifest key (in its ``ocrserve`` section) holding `serving_spec`.
SERVING_KEY = "serving"


def serving_spec(predictor: MMOCRPredictor, label_convertor: Mapping[str, Any]) -> dict[str, Any]:
    """What serving without the PyTorch model needs to know from it (read at archive time).

    ``label_convertor`` is the archived config's (whose ``dict_file`` names the archived file).
    """
    from ocrserve.mmocr.models.detectors import SingleStageTextDetector

    model = predictor.model
    if isinstance(model, SingleStageTextDetector):
        return {
            "task": "textdet",
            "postprocessor": model.postprocessor_config(),
            "downsample_ratio": model.downsample_ratio,
            "result_has_filename": model.result_has_filename,
        }
    convertor = dict(model.label_convertor_cfg)
    if "dict_file" in label_convertor:
        convertor["dict_file"] = label_convertor["dict_file"]
    return {"task": "textrecog", "label_convertor": convertor}


def takes_aug_test(pipeline_cfg: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``model_inference`` hands a recognizer a list of images (its ``aug_test`` path).

    It does when the pipeline has a test-time augmentation wrapper, or when ``img`` ends up in a
    ``DataContainer`` (``DefaultFormatBundle``); a plain tensor (``ToTensorOCR``, as in NRTR's
    config) goes to ``simple_test``, whose score is the list of per-character scores.
    """
    wrappers = {"MultiRotateAugOCR", "MultiScaleFlipAug", "DefaultFormatBundle"}
    return any(step.get("type") in wrappers for step in pipeline_cfg)


class OnnxMMOCRPredictor:
    """An MMOCR 0.x text detector or recognizer on ONNX Runtime, from its config and ONNX file."""

    task: Literal["textdet", "textrecog"]
    #: Whether images should be rotated by their EXIF orientation when decoded.
    exif_orientation: bool

    def __init__(
        self,
        config: Mapping[str, Any],
        spec: Mapping[str, Any],
        network: OnnxNetwork,
        *,
        base_dir: str | os.PathLike[str] | None = None,
        exif_orientation: bool | None = None,
        max_batch_size: int = 8,
    ) -> None:
        """``config`` is the whole MMOCR config, ``spec`` the archive's `serving_spec`; a
        relative ``dict_file`` is looked for in ``base_dir`` too."""
        self.config = config
        self.network = network
        self.max_batch_size = max(1, int(max_batch_size))
        pipeline_cfg = select_test_pipeline(config)
        self.pipeline = build_pipeline(pipeline_cfg)
        color_type = str(pipeline_cfg[0].get("color_type", "color"))
        self.exif_orientation = (
            exif_orientation_for(color_type) if exif_orientation is None else exif_orientation
        )
        task = spec.get("task")
        if task == "textdet":
            self.task = "textdet"
            self.postprocessor = build_postprocessor(spec["postprocessor"])
            self.downsample_ratio = float(spec.get("downsample_ratio", 1.0))
            self.result_has_filename = bool(spec.get("result_has_filename", True))
        elif task == "textrecog":
            self.task = "textrecog"
            self.convertor = build_convertor(
                spec["label_convertor"], None if base_dir is None else Path(base_dir)
            )
            self.aug_test = takes_aug_test(pipeline_cfg)
        else:
            raise ConfigError(f"serving spec: task must be textdet or textrecog, got {task!r}")

    @classmethod
    def from_archive(
        cls, folder: Path, config: Mapping[str, Any], section: Mapping[str, Any], threads: int
    ) -> OnnxMMOCRPredictor:
        """The predictor of an extracted ``--runtime onnx`` archive (``section``: its manifest's
        ``ocrserve`` section, with `SERVING_KEY`)."""
        spec = section.get(SERVING_KEY)
        if not isinstance(spec, Mapping):
            raise ArchiveError(f"{folder.name}: the manifest has no {SERVING_KEY!r} section")
        onnx_path = (folder / str(section.get("onnx", "model.onnx"))).resolve()
        if folder.resolve() not in onnx_path.parents:
            raise ArchiveError(f"{section.get('onnx')!r} points outside the archive")
        model_type = str((config.get("model") or {}).get("type"))
        network = load_onnx_network(model_type, onnx_path, threads)
        return cls(config, spec, network, base_dir=folder)

    def preprocess(self, image: np.ndarray) -> list[Sample]:
        """The test pipeline on one BGR uint8 image: one `Sample` per test-time augmentation."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InvalidInput("Images must be H x W x 3 uint8 BGR arrays")
        return to_samples(self.pipeline({"img": image}))

    def forward(self, samples: Sequence[Sample]) -> list[Any]:
        """Raw network output per sample (batch axis of 1 kept), batching equal shapes only."""
        outputs: list[Any] = [None] * len(samples)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, sample in enumerate(samples):
            groups.setdefault(tuple(sample.img.shape), []).append(i)
        for indexes in groups.values():
            for start in range(0, len(indexes), self.max_batch_size):
                chunk = indexes[start : start + self.max_batch_size]
                batch = np.stack([samples[i].img for i in chunk])
                ratios = [valid_ratio_of(samples[i].meta, samples[i].img.shape[-1]) for i in chunk]
                out = self.network.run(batch, np.asarray(ratios, dtype=np.float64))
                for j, i in enumerate(chunk):
                    outputs[i] = _batch_item(out, j)
        return outputs

    def postprocess(self, samples: Sequence[Sample], outputs: Sequence[Any]) -> dict[str, Any]:
        """One image's samples and raw outputs -> MMOCR's ``model_inference`` result."""
        if self.task == "textdet":
            if len(samples) != 1:
                raise ConfigError(
                    f"Text detectors take one test-time variant per image, the pipeline gave "
                    f"{len(samples)} (MMOCR's detectors have no aug_test either)"
                )
            boundaries = self.postprocessor(_batch_item(outputs[0], 0, keep_axis=False))
            scale_factor = np.broadcast_to(
                np.asarray(samples[0].meta.get("scale_factor", 1.0), dtype=np.float32), (4,)
            )
            boundaries = rescale_boundaries(boundaries, scale_factor, self.downsample_ratio)
            if not self.result_has_filename:
                return {"boundary_result": boundaries}
            return {"boundary_result": boundaries, "filename": samples[0].meta.get("filename")}
        decoded = [
            self.convertor.tensor2idx(out, [with_valid_ratio(s.meta, s.img.shape[-1])])
            for s, out in zip(samples, outputs)
        ]
        if not self.aug_test:
            indexes, scores = decoded[0]
            return {"text": self.convertor.idx2str(indexes)[0], "score": scores[0]}
        best_text, best_score = "", -1.0
        for indexes, scores in decoded:
            text = self.convertor.idx2str(indexes)[0]
            score = sum(scores[0]) / max(1, len(text))
            if score > best_score:
                best_text, best_score = text, score
        return {"text": best_text, "score": best_score}

    def predict(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        """Predict a batch of BGR uint8 images; one MMOCR result dict per image, in order."""
        per_image = [self.preprocess(image) for image in images]
        outputs = self.forward([s for samples in per_image for s in samples])
        results, at = [], 0
        for samples in per_image:
            results.append(self.postprocess(samples, outputs[at : at + len(samples)]))
            at += len(samples)
        return results


def _batch_item(out: Any, j: int, keep_axis: bool = True) -> Any:
    """Item ``j`` of a batched output (arrays nested in tuples), with a batch axis of 1 if
    ``keep_axis``."""
    if isinstance(out, (tuple, list)):
        return type(out)(_batch_item(o, j, keep_axis) for o in out)
    return out[j : j + 1] if keep_axis else out[j]
