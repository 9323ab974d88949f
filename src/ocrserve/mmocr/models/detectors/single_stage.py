"""What every text detector is: backbone -> neck -> ``bbox_head``, returning the raw head output.

Post-processing (maps -> boundaries) is not part of the network: the predictor builds it from
`postprocessor_config` with `ocrserve.mmocr.pipelines.postprocess`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import BACKBONES, HEADS, NECKS

__all__ = ["SingleStageTextDetector"]

#: Head keys that MMOCR 0.x still accepted on the head and moved into its postprocessor config.
_LEGACY_HEAD_KEYS = ("text_repr_type", "decoding_type")


class SingleStageTextDetector(nn.Module):
    """MMOCR's ``SingleStageTextDetector`` (inference part): ``forward(img) -> head output``."""

    task: ClassVar[str] = "textdet"
    #: Whether MMOCR's result dict has a ``filename`` key (FCENet's has not).
    result_has_filename: ClassVar[bool] = True
    #: Whether serving (`MMOCRPredictor` with ``lean=True``) runs it in channels-last memory
    #: format: faster on CPU; set where its fixtures stay within the parity tolerances.
    channels_last: ClassVar[bool] = False

    def __init__(
        self,
        backbone: Mapping[str, Any],
        bbox_head: Mapping[str, Any],
        neck: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.backbone = BACKBONES.build(backbone)
        if neck is not None:
            self.neck = NECKS.build(neck)
        self.bbox_head = HEADS.build(bbox_head)
        self._head_cfg = dict(bbox_head)

    @property
    def with_neck(self) -> bool:
        return hasattr(self, "neck")

    @property
    def downsample_ratio(self) -> float:
        """How much smaller the head output is than the network input (MMOCR's head setting)."""
        return float(getattr(self.bbox_head, "downsample_ratio", 1.0))

    def postprocessor_config(self) -> dict[str, Any]:
        """The head's postprocessor config as MMOCR resolves it (head default, legacy keys)."""
        default = getattr(type(self.bbox_head), "default_postprocessor", None)
        cfg = dict(self._head_cfg.get("postprocessor") or default or {})
        for key in _LEGACY_HEAD_KEYS:
            if self._head_cfg.get(key):
                cfg[key] = self._head_cfg[key]
        overrides = getattr(self.bbox_head, "postprocessor_overrides", None)
        if callable(overrides):
            cfg.update(overrides())
        return cfg

    def extract_feat(self, img: Tensor) -> Any:
        x = self.backbone(img)
        return self.neck(x) if self.with_neck else x

    def forward(self, img: Tensor) -> Tensor:
        return self.bbox_head(self.extract_feat(img))
