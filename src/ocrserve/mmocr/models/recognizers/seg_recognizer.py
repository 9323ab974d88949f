"""MMOCR's ``SegRecognizer`` (SegOCR): [preprocessor] -> backbone -> neck -> ``SegHead``.

The network returns the head's per-pixel class logits ``N x classes x H x W``; ``SegConvertor``
(`ocrserve.mmocr.pipelines.postprocess.seg`) turns them into characters outside the network.
The head's class count comes from that convertor, as in MMOCR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import BACKBONES, HEADS, MODELS, NECKS, PREPROCESSORS

__all__ = ["SegRecognizer"]


@MODELS.register("SegRecognizer", ignore=("loss", "train_cfg", "test_cfg"))
class SegRecognizer(nn.Module):
    """``forward(img, img_metas)`` -> the head's raw output (the metas are not read)."""

    task: ClassVar[str] = "textrecog"

    def __init__(
        self,
        backbone: Mapping[str, Any],
        neck: Mapping[str, Any],
        head: Mapping[str, Any],
        label_convertor: Mapping[str, Any],
        preprocessor: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        from ocrserve.mmocr.pipelines.postprocess import build_convertor

        if not label_convertor:
            raise ConfigError("A recognizer config needs a label_convertor")
        self.label_convertor_cfg = dict(label_convertor)
        convertor = build_convertor(self.label_convertor_cfg)
        self.preprocessor = PREPROCESSORS.build(preprocessor) if preprocessor else None
        self.backbone = BACKBONES.build(backbone)
        self.neck = NECKS.build(neck)
        self.head = HEADS.build({**head, "num_classes": convertor.num_classes()})

    def extract_feat(self, img: Tensor) -> Any:
        if self.preprocessor is not None:
            img = self.preprocessor(img)
        return self.backbone(img)

    def forward(self, img: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None) -> Tensor:
        return self.head(self.neck(self.extract_feat(img)))
