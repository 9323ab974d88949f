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

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ocrserve.errors import CheckpointError, ConfigError, ModelLoadError
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors import OCRMaskRCNN, SingleStageTextDetector
from ocrserve.mmocr.models.keymap import rename_mmocr1_keys
from ocrserve.mmocr.models.recognizers import EncodeDecodeRecognizer, SegRecognizer
from ocrserve.mmocr.models.valid_ratio import valid_ratio_of, with_valid_ratio
from ocrserve.mmocr.pipelines import Sample
from ocrserve.mmocr.pipelines.postprocess import build_convertor
from ocrserve.mmocr.predictor_base import BOX_SCORE_ATTRIBUTE, MMOCRPredictorBase

__all__ = ["BOX_SCORE_ATTRIBUTE", "MMOCRPredictor", "Network"]

#: A network other than the PyTorch model (ONNX Runtime's, `ocrserve.mmocr.onnx_export`):
#: ``(batch, valid ratios) -> output`` as the PyTorch network gives it.
Network = Callable[[Tensor, Tensor], Any]
#: The text detectors `MMOCRPredictor` runs.
Detector = SingleStageTextDetector | OCRMaskRCNN


class MMOCRPredictor(MMOCRPredictorBase):
    """An MMOCR 0.x text detector or recognizer, from its config and weights."""

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
        kinds = (SingleStageTextDetector, OCRMaskRCNN, EncodeDecodeRecognizer, SegRecognizer)
        if not isinstance(model, kinds):
            raise ConfigError(f"Model type {model_cfg.get('type')!r} is neither kind of model")
        self.model: Detector | EncodeDecodeRecognizer | SegRecognizer = model
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

        if isinstance(self.model, (SingleStageTextDetector, OCRMaskRCNN)):
            detector = (
                self.model.postprocessor_config(),
                self.model.downsample_ratio,
                self.model.result_has_filename,
            )
            self._build_stages(config, exif_orientation, detector=detector)
        else:
            convertor = build_convertor(self.model.label_convertor_cfg)
            self._build_stages(config, exif_orientation, convertor=convertor)

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

    # -- the network stage (preprocess, postprocess, predict: `MMOCRPredictorBase`) ------------

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
            if isinstance(self.model, OCRMaskRCNN):
                return self.model(batch, [s.meta for s in samples])
            return self.model(batch)
        metas = [with_valid_ratio(s.meta, s.img.shape[-1]) for s in samples]
        return self.model(batch, metas)

    def postprocess(
        self,
        samples: Sequence[Sample],
        outputs: Sequence[Any],
        options: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        # Mask R-CNN's boundaries are in the original image's pixels already: nothing to rescale.
        if getattr(self.model, "boundaries_in_original_pixels", False):
            samples = [replace(s, meta={**s.meta, "scale_factor": 1.0}) for s in samples]
        return super().postprocess(samples, outputs, options)


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
