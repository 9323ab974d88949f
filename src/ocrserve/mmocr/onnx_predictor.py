"""MMOCR models served from an ONNX file and their config alone: no torch, no weights.

An ``ocrserve archive --runtime onnx`` archive holds the config (its test pipeline), the network
as ONNX, any dictionary file, and the manifest's ``serving`` section: what the PyTorch model
decided when it was built at archive time and the post-processing needs (`serving_spec`):

- text detection: ``{"postprocessor": {...}, "downsample_ratio": f, "result_has_filename": b}``,
  the head's postprocessor config as MMOCR resolves it (head defaults and legacy keys);
- text recognition: ``{"label_convertor": {...}}``, with the recognizer's ``max_seq_len``.

`OnnxMMOCRPredictor` runs the same numpy/OpenCV pipeline, post-processing and request options as
`MMOCRPredictor` (`MMOCRPredictorBase`), with ONNX Runtime in the middle, and returns the same
result dicts (see `ocrserve.mmocr.mmocr_predictor` for what they are). Nothing here imports
torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrserve.errors import ArchiveError, ConfigError
from ocrserve.mmocr.models.valid_ratio import valid_ratio_of
from ocrserve.mmocr.onnx_export import OnnxNetwork, load_onnx_network
from ocrserve.mmocr.pipelines import Sample
from ocrserve.mmocr.pipelines.postprocess import build_convertor
from ocrserve.mmocr.predictor_base import MMOCRPredictorBase

if TYPE_CHECKING:
    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

__all__ = ["SERVING_KEY", "OnnxMMOCRPredictor", "serving_spec"]

#: The manifest key (in its ``ocrserve`` section) holding `serving_spec`.
SERVING_KEY = "serving"


def serving_spec(predictor: MMOCRPredictor, label_convertor: Mapping[str, Any]) -> dict[str, Any]:
    """What serving without the PyTorch model needs to know from it (read at archive time).

    ``label_convertor`` is the archived config's (whose ``dict_file`` names the archived file).
    """
    from ocrserve.mmocr.models.detectors import OCRMaskRCNN, SingleStageTextDetector

    model = predictor.model
    if isinstance(model, (SingleStageTextDetector, OCRMaskRCNN)):
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


class OnnxMMOCRPredictor(MMOCRPredictorBase):
    """An MMOCR 0.x text detector or recognizer on ONNX Runtime, from its config and ONNX file."""

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
        task = spec.get("task")
        if task == "textdet":
            detector = (
                spec["postprocessor"],
                float(spec.get("downsample_ratio", 1.0)),
                bool(spec.get("result_has_filename", True)),
            )
            self._build_stages(config, exif_orientation, detector=detector)
        elif task == "textrecog":
            base = None if base_dir is None else Path(base_dir)
            convertor = build_convertor(spec["label_convertor"], base)
            self._build_stages(config, exif_orientation, convertor=convertor)
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


def _batch_item(out: Any, j: int) -> Any:
    """Item ``j`` of a batched output (arrays nested in tuples), with a batch axis of 1."""
    if isinstance(out, (tuple, list)):
        return type(out)(_batch_item(o, j) for o in out)
    return out[j : j + 1]
