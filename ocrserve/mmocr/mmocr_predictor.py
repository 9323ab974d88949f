"""MMOCR 0.x models (config + checkpoint) as a `Predictor`: MMOCR's answers without MMOCR.

``predict`` returns, per image, exactly the dict MMOCR 0.x's ``model_inference(model, [img])``
returned for it, which is what MMOCR's TorchServe handler (``tools/deployment/mmocr_handler.py``)
sent back for each request:

- text detection: ``{"boundary_result": [[x1, y1, ..., xn, yn, score], ...], "filename": None}``
  (``filename`` is None because the handler passed decoded arrays);
- text recognition: ``{"text": str, "score": float}``. ``model_inference`` hands recognizers a
  list, so MMOCR's test-time-augmentation path runs even without augmentation: the score is the
  sum of the character scores divided by ``max(1, len(text))``, and with ``MultiRotateAugOCR``
  the best-scoring rotation wins. A pipeline with neither a test-time augmentation wrapper nor
  ``DefaultFormatBundle`` (NRTR's) takes ``simple_test`` instead: ``score`` is then the list of
  per-character scores.

Images come in decoded (BGR uint8). The pipeline's first step only converts colours; EXIF
rotation is decided by whoever decodes, told by `MMOCRPredictor.exif_orientation`: False when the
config loads with ``color_ignore_orientation``, as ``mmcv.imread`` would read the file. (MMOCR's
handler decoded with ``mmcv.imfrombytes``, i.e. ``cv2.imdecode(IMREAD_COLOR)``, which applies the
EXIF rotation whatever the config says; pass ``exif_orientation=True`` to serve like that.)

Images are batched through the network in groups of equal input shape only, so a batch gives the
same numbers as one image at a time (padding would change DBNet's maps and CRNN's LSTM inputs).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

from ocrserve.errors import CheckpointError, ConfigError, InvalidInput, ModelLoadError
from ocrserve.imaging import shrink_to, unshrink_boundaries
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors import SingleStageTextDetector
from ocrserve.mmocr.models.keymap import rename_mmocr1_keys
from ocrserve.mmocr.models.recognizers import EncodeDecodeRecognizer, SegRecognizer
from ocrserve.mmocr.models.valid_ratio import valid_ratio_of, with_valid_ratio
from ocrserve.mmocr.onnx_predictor import takes_aug_test
from ocrserve.mmocr.pipelines import Sample, build_pipeline, select_test_pipeline, to_samples
from ocrserve.mmocr.pipelines.load_image import exif_orientation_for
from ocrserve.mmocr.pipelines.postprocess import build_convertor, build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.db import rescale_boundaries

__all__ = ["MMOCRPredictor", "Network"]

#: A network other than the PyTorch model (ONNX Runtime's, `ocrserve.mmocr.onnx_export`):
#: ``(batch, valid ratios) -> output`` as the PyTorch network gives it.
Network = Callable[[Tensor, Tensor], Any]

#: The attribute of each MMOCR postprocessor that thresholds the score it reports per box: the
#: ``box_score_threshold`` option sets it. Other postprocessors' boxes are only filtered.
BOX_SCORE_ATTRIBUTE = {
    "DBPostprocessor": "min_text_score",
    "PANPostprocessor": "min_text_avg_confidence",
    "PSEPostprocessor": "min_text_avg_confidence",
}


class MMOCRPredictor:
    """An MMOCR 0.x text detector or recognizer, from its config and weights."""

    task: Literal["textdet", "textrecog"]
    #: Whether images should be rotated by their EXIF orientation when decoded.
    exif_orientation: bool

    def __init__(
        self,
        config: Mapping[str, Any],
        state_dict: Mapping[str, Tensor],
        device: str | torch.device = "cpu",
        *,
        base_dir: str | os.PathLike[str] | None = None,
        exif_orientation: bool | None = None,
        max_batch_size: int = 8,
        lean: bool = False,
        allow_tf32: bool = False,
        network: Network | None = None,
    ) -> None:
        """Build the network, load the weights strictly, build the pipeline and post-processing.

        ``config`` is a whole MMOCR config as a dict (`ocrserve.mmocr.load_config`),
        ``state_dict`` its weights in MMOCR 0.x or 1.x names; a relative ``dict_file`` the
        config names is looked for in ``base_dir`` when not found from the working directory.
        ``exif_orientation`` overrides what the config's loading step implies. ``lean`` is how
        the server runs a model: network outputs that post-processing never reads are dropped
        (DBNet's threshold and binary maps), and detectors that allow it run channels-last;
        the results stay within the parity tolerances, faster, but `forward` no longer returns
        MMOCR's raw output.
        On a CUDA device, convolutions run in full FP32 unless ``allow_tf32``: PyTorch's
        default TF32 convolutions (Ampere and later) move raw outputs by up to ~0.5 on the
        MMOCR fixtures, and polygons and texts with them (``tools/device_parity.py``). This
        sets ``torch.backends.cudnn.allow_tf32`` for the whole process.
        ``network``, when given, runs instead of the PyTorch network (the weights still load, so
        that the archive is checked and the model's settings are known).
        """
        if not isinstance(config.get("model"), Mapping):
            raise ConfigError("The config has no model dict")
        self.config = config
        #: Runs instead of the PyTorch network when set.
        self.network = network
        self.device = _device(device)
        if self.device.type == "cuda":
            set_cuda_precision(allow_tf32)
        self.max_batch_size = max(1, int(max_batch_size))
        model_cfg = _resolve_dict_file(config["model"], base_dir)
        model = build_model(model_cfg)
        if not isinstance(model, (SingleStageTextDetector, EncodeDecodeRecognizer, SegRecognizer)):
            raise ConfigError(f"Model type {model_cfg.get('type')!r} is neither kind of model")
        self.model: SingleStageTextDetector | EncodeDecodeRecognizer | SegRecognizer = model
        _load_weights(self.model, state_dict)
        #: Whether inputs go to the network in channels-last memory format.
        self.channels_last = lean and bool(getattr(self.model, "channels_last", False))
        if lean:
            for module in self.model.modules():
                drop = getattr(module, "drop_unused_outputs", None)
                if callable(drop):
                    drop()
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.model.to(self.device).eval()

        pipeline_cfg = select_test_pipeline(config)
        self.pipeline = build_pipeline(pipeline_cfg)
        color_type = str(pipeline_cfg[0].get("color_type", "color"))
        self.exif_orientation = (
            exif_orientation_for(color_type) if exif_orientation is None else exif_orientation
        )
        if isinstance(self.model, SingleStageTextDetector):
            self.task = "textdet"
            self.postprocessor = build_postprocessor(self.model.postprocessor_config())
        else:
            self.task = "textrecog"
            self.convertor = build_convertor(self.model.label_convertor_cfg)
            self.aug_test = takes_aug_test(pipeline_cfg)

    @classmethod
    def from_files(
        cls,
        config_path: str | os.PathLike[str],
        checkpoint_path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        **kwargs: Any,
    ) -> MMOCRPredictor:
        """Read an MMOCR ``.py`` config and a ``.pth`` checkpoint (never executing either)."""
        from ocrserve.mmocr import load_checkpoint, load_config

        config = load_config(config_path)
        checkpoint = load_checkpoint(checkpoint_path)
        kwargs.setdefault("base_dir", Path(config_path).resolve().parent)
        return cls(config, checkpoint.state_dict, device, **kwargs)

    # -- the three stages, public so that parity tests and tools can look at each -------------

    def preprocess(self, image: np.ndarray) -> list[Sample]:
        """The test pipeline on one BGR uint8 image: one `Sample` per test-time augmentation."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise InvalidInput("Images must be H x W x 3 uint8 BGR arrays")
        return to_samples(self.pipeline({"img": image}))

    @torch.inference_mode()
    def forward(self, samples: Sequence[Sample]) -> list[Tensor]:
        """Raw network output per sample (on the CPU), batching samples of equal shape."""
        outputs: list[Any] = [None] * len(samples)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, sample in enumerate(samples):
            groups.setdefault(tuple(sample.img.shape), []).append(i)
        for indexes in groups.values():
            for start in range(0, len(indexes), self.max_batch_size):
                chunk = indexes[start : start + self.max_batch_size]
                batch = torch.from_numpy(np.stack([samples[i].img for i in chunk]))
                out = _to_cpu(self._network(batch.to(self.device), [samples[i] for i in chunk]))
                for j, i in enumerate(chunk):
                    outputs[i] = _batch_item(out, j)
        return [o for o in outputs if o is not None]

    def _network(self, batch: Tensor, samples: Sequence[Sample]) -> Any:
        if self.network is not None:
            ratios = [valid_ratio_of(s.meta, s.img.shape[-1]) for s in samples]
            return self.network(batch, torch.tensor(ratios, dtype=torch.float64))
        if self.task == "textdet":
            if self.channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            return self.model(batch)
        metas = [with_valid_ratio(s.meta, s.img.shape[-1]) for s in samples]
        return self.model(batch, metas)

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
        outputs: Sequence[Tensor],
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
            assert isinstance(self.model, SingleStageTextDetector)
            postprocessor = self._postprocessor(opts)
            boundaries = postprocessor(_to_numpy(_batch_item(outputs[0], 0), squeeze=True))
            scale_factor = np.broadcast_to(
                np.asarray(samples[0].meta.get("scale_factor", 1.0), dtype=np.float32), (4,)
            )
            boundaries = rescale_boundaries(boundaries, scale_factor, self.model.downsample_ratio)
            if "box_score_threshold" in opts:
                threshold = float(opts["box_score_threshold"])
                boundaries = [b for b in boundaries if b[-1] >= threshold]
            if not self.model.result_has_filename:
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


def _to_cpu(out: Any) -> Any:
    """A network output (a tensor, or tuples of them for multi-level heads) on the CPU."""
    if isinstance(out, (tuple, list)):
        return type(out)(_to_cpu(o) for o in out)
    return out.cpu()


def _batch_item(out: Any, j: int) -> Any:
    """Sample ``j`` of a batched output, keeping a batch axis of 1 on every tensor."""
    if isinstance(out, (tuple, list)):
        return type(out)(_batch_item(o, j) for o in out)
    return out[j : j + 1]


def _to_numpy(out: Any, squeeze: bool = False) -> Any:
    """Tensors (nested in tuples) as numpy arrays, the batch axis of 1 dropped if ``squeeze``."""
    if isinstance(out, (tuple, list)):
        return [_to_numpy(o, squeeze) for o in out]
    array = out.numpy()
    return array[0] if squeeze else array


def set_cuda_precision(allow_tf32: bool) -> None:
    """Whether cuDNN convolutions may use TF32; matrix products always stay full FP32."""
    torch.backends.cudnn.allow_tf32 = allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False


def _device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ModelLoadError(f"Invalid device {device!r}: {exc}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"Device {device!r} requested but CUDA is not available")
    return dev


def _resolve_dict_file(
    model_cfg: Mapping[str, Any], base_dir: str | os.PathLike[str] | None
) -> dict[str, Any]:
    """Point a relative ``label_convertor.dict_file`` at ``base_dir`` if it is not found as is."""
    cfg = dict(model_cfg)
    convertor = cfg.get("label_convertor")
    if base_dir is not None and isinstance(convertor, Mapping) and convertor.get("dict_file"):
        path = Path(convertor["dict_file"])
        # A file beside the config (inside an archive) wins over one in the working directory.
        if not path.is_absolute() and (Path(base_dir) / path).exists():
            cfg["label_convertor"] = {**convertor, "dict_file": str(Path(base_dir) / path)}
    return cfg


def _load_weights(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Load strictly: MMOCR 1.x names are mapped, then any missing or unexpected key is an error."""
    from ocrserve.mmocr import check_keys

    state = rename_mmocr1_keys(state_dict)
    check_keys(model.state_dict().keys(), state.keys())
    expected = model.state_dict()
    wrong = [
        f"{k} (checkpoint {tuple(v.shape)}, model {tuple(expected[k].shape)})"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if wrong:
        raise CheckpointError(f"checkpoint shapes do not match the model: {', '.join(wrong[:20])}")
    model.load_state_dict(state, strict=True)
