"""What both MMOCR predictors share, without torch: the test pipeline, post-processing, options.

`MMOCRPredictor` (the PyTorch network) and `OnnxMMOCRPredictor` (ONNX Runtime, no torch) differ
only in how they build themselves and in `forward`; the results they return are described in
`ocrserve.mmocr.mmocr_predictor`. Post-processing takes the raw outputs as numpy arrays or CPU
tensors alike.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ocrserve.errors import ConfigError, InvalidInput
from ocrserve.imaging import shrink_to, unshrink_boundaries
from ocrserve.mmocr.models.valid_ratio import with_valid_ratio
from ocrserve.mmocr.pipelines import Sample, build_pipeline, select_test_pipeline, to_samples
from ocrserve.mmocr.pipelines.load_image import exif_orientation_for
from ocrserve.mmocr.pipelines.postprocess import build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.activations import as_numpy
from ocrserve.mmocr.pipelines.postprocess.convertor import BaseConvertor
from ocrserve.mmocr.pipelines.postprocess.db import rescale_boundaries

__all__ = ["BOX_SCORE_ATTRIBUTE", "MMOCRPredictorBase", "takes_aug_test"]

#: The attribute of each MMOCR postprocessor that thresholds the score it reports per box: the
#: ``box_score_threshold`` option sets it. Other postprocessors' boxes are only filtered.
BOX_SCORE_ATTRIBUTE = {
    "DBPostprocessor": "min_text_score",
    "PANPostprocessor": "min_text_avg_confidence",
    "PSEPostprocessor": "min_text_avg_confidence",
}


def takes_aug_test(pipeline_cfg: Sequence[Mapping[str, Any]]) -> bool:
    """Whether ``model_inference`` hands a recognizer a list of images (its ``aug_test`` path).

    It does when the pipeline has a test-time augmentation wrapper, or when ``img`` ends up in a
    ``DataContainer`` (``DefaultFormatBundle``); a plain tensor (``ToTensorOCR``, as in NRTR's
    config) goes to ``simple_test``, whose score is the list of per-character scores.
    """
    wrappers = {"MultiRotateAugOCR", "MultiScaleFlipAug", "DefaultFormatBundle"}
    return any(step.get("type") in wrappers for step in pipeline_cfg)


class MMOCRPredictorBase:
    """An MMOCR 0.x detector or recognizer around a network: subclasses provide `forward`."""

    task: Literal["textdet", "textrecog"]
    #: Whether images should be rotated by their EXIF orientation when decoded.
    exif_orientation: bool
    #: Detectors: boxes -> input pixels (``1 / downsample_ratio``), the ``filename`` key.
    postprocessor: Callable[[Any], list[list[float]]]
    downsample_ratio: float
    result_has_filename: bool
    #: Recognizers: outputs -> text, and whether the test-time augmentation path scores it.
    convertor: BaseConvertor
    aug_test: bool

    def _build_stages(
        self,
        config: Mapping[str, Any],
        exif_orientation: bool | None,
        detector: tuple[Mapping[str, Any], float, bool] | None = None,
        convertor: BaseConvertor | None = None,
    ) -> None:
        """The pipeline and, for a ``detector`` (postprocessor config, downsample ratio, result
        has filename) or a recognizer's ``convertor``, the post-processing."""
        pipeline_cfg = select_test_pipeline(config)
        self.pipeline = build_pipeline(pipeline_cfg)
        color_type = str(pipeline_cfg[0].get("color_type", "color"))
        self.exif_orientation = (
            exif_orientation_for(color_type) if exif_orientation is None else exif_orientation
        )
        if detector is not None:
            self.task = "textdet"
            self.postprocessor = build_postprocessor(detector[0])
            self.downsample_ratio, self.result_has_filename = float(detector[1]), detector[2]
        elif convertor is not None:
            self.task = "textrecog"
            self.convertor = convertor
            self.aug_test = takes_aug_test(pipeline_cfg)
        else:
            raise ConfigError("An MMOCR model is a detector or a recognizer")

    def preprocess(self, image: np.ndarray) -> list[Sample]:
        """The test pipeline on one BGR uint8 image: one `Sample` per test-time augmentation."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InvalidInput("Images must be H x W x 3 uint8 BGR arrays")
        return to_samples(self.pipeline({"img": image}))

    def forward(self, samples: Sequence[Sample]) -> list[Any]:
        """Raw network output per sample (batch axis of 1 kept), batching equal shapes only."""
        raise NotImplementedError

    def _postprocessor(self, options: Mapping[str, Any]) -> Callable[[Any], list[list[float]]]:
        """The detection postprocessor, with the request's ``box_score_threshold`` if any."""
        threshold = options.get("box_score_threshold")
        attribute = BOX_SCORE_ATTRIBUTE.get(type(self.postprocessor).__name__)
        if threshold is None or attribute is None:
            return self.postprocessor
        changed = copy.copy(self.postprocessor)
        setattr(changed, attribute, float(threshold))
        return changed

    def postprocess(
        self,
        samples: Sequence[Sample],
        outputs: Sequence[Any],
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One image's samples and raw outputs -> MMOCR's ``model_inference`` result.

        ``options`` (`ocrserve.options`): ``box_score_threshold`` for detectors,
        ``char_scores`` for recognizers (the characters' scores of the text answered)."""
        opts = options or {}
        if self.task == "textdet":
            if len(samples) != 1:
                raise ConfigError(
                    f"Text detectors take one test-time variant per image, the pipeline gave "
                    f"{len(samples)} (MMOCR's detectors have no aug_test either)"
                )
            boundaries = self._postprocessor(opts)(_squeezed(outputs[0]))
            scale_factor = np.broadcast_to(
                np.asarray(samples[0].meta.get("scale_factor", 1.0), dtype=np.float32), (4,)
            )
            boundaries = rescale_boundaries(boundaries, scale_factor, self.downsample_ratio)
            if "box_score_threshold" in opts:
                threshold = float(opts["box_score_threshold"])
                boundaries = [b for b in boundaries if b[-1] >= threshold]
            if not self.result_has_filename:
                return {"boundary_result": boundaries}
            return {"boundary_result": boundaries, "filename": samples[0].meta.get("filename")}
        if not self.aug_test:
            indexes, scores = self.convertor.tensor2idx(
                outputs[0], [with_valid_ratio(samples[0].meta, samples[0].img.shape[-1])]
            )
            text = self.convertor.idx2str(indexes)[0]
            answer: dict[str, Any] = {"text": text, "score": scores[0]}
            if opts.get("char_scores"):
                answer["char_scores"] = [float(c) for c in scores[0]]
            return answer
        best_text, best_score, best_chars = "", -1.0, []
        for sample, out in zip(samples, outputs):
            indexes, scores = self.convertor.tensor2idx(
                out, [with_valid_ratio(sample.meta, sample.img.shape[-1])]
            )
            text = self.convertor.idx2str(indexes)[0]
            score = sum(scores[0]) / max(1, len(text))
            if score > best_score:
                best_text, best_score, best_chars = text, score, scores[0]
        answer = {"text": best_text, "score": best_score}
        if opts.get("char_scores"):
            answer["char_scores"] = [float(c) for c in best_chars]
        return answer

    def predict(
        self, images: Sequence[np.ndarray], options: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Predict a batch of BGR uint8 images; one MMOCR result dict per image, in order.

        ``options`` are a request's (`ocrserve.options`); a detector's ``max_side`` scales
        larger images down before the pipeline, its boxes still in the image's pixels."""
        opts = options or {}
        max_side = opts.get("max_side") if self.task == "textdet" else None
        inputs = [shrink_to(image, max_side) for image in images] if max_side else list(images)
        per_image = [self.preprocess(image) for image in inputs]
        flat = [s for samples in per_image for s in samples]
        outputs = self.forward(flat)
        results, at = [], 0
        for k, samples in enumerate(per_image):
            result = self.postprocess(samples, outputs[at : at + len(samples)], opts)
            if inputs[k] is not images[k]:
                result["boundary_result"] = unshrink_boundaries(
                    result["boundary_result"], inputs[k], images[k]
                )
            results.append(result)
            at += len(samples)
        return results


def _squeezed(out: Any) -> Any:
    """One image's output (a batch axis of 1; arrays or tensors nested in tuples for multi-level
    heads) as numpy arrays without the batch axis, nested in lists."""
    if isinstance(out, (tuple, list)):
        return [_squeezed(o) for o in out]
    return as_numpy(out)[0]
