"""What encode-decode recognizers are: [preprocessor] -> backbone -> [encoder] -> decoder.

The network returns the decoder's raw output; decoding it into text is the label convertor's job
(`ocrserve.mmocr.pipelines.postprocess`), which the predictor builds from the same config. The
decoder's class count and special indexes come from that convertor, as in MMOCR.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import BACKBONES, DECODERS, ENCODERS, PREPROCESSORS

__all__ = ["EncodeDecodeRecognizer"]


class EncodeDecodeRecognizer(nn.Module):
    """MMOCR's ``EncodeDecodeRecognizer`` (inference part).

    ``forward(img, img_metas)`` takes metas with ``valid_ratio`` set (resized width / padded
    width, as MMOCR's ``simple_test`` sets it) and returns ``N x T x C`` decoder output.
    """

    task: ClassVar[str] = "textrecog"

    def __init__(
        self,
        backbone: Mapping[str, Any],
        decoder: Mapping[str, Any],
        label_convertor: Mapping[str, Any],
        preprocessor: Mapping[str, Any] | None = None,
        encoder: Mapping[str, Any] | None = None,
        max_seq_len: int = 40,
    ) -> None:
        super().__init__()
        from ocrserve.mmocr.pipelines.postprocess import build_convertor

        if not label_convertor:
            raise ConfigError("A recognizer config needs a label_convertor")
        self.label_convertor_cfg = {**label_convertor, "max_seq_len": max_seq_len}
        convertor = build_convertor(self.label_convertor_cfg)
        self.max_seq_len = max_seq_len
        self.preprocessor = PREPROCESSORS.build(preprocessor) if preprocessor else None
        self.backbone = BACKBONES.build(backbone)
        self.encoder = ENCODERS.build(encoder) if encoder else None
        self.decoder = DECODERS.build(
            decoder,
            num_classes=convertor.num_classes(),
            start_idx=convertor.start_idx,
            padding_idx=convertor.padding_idx,
            max_seq_len=max_seq_len,
        )

    def extract_feat(self, img: Tensor) -> Any:
        if self.preprocessor is not None:
            img = self.preprocessor(img)
        return self.backbone(img)

    def forward(self, img: Tensor, img_metas: Sequence[Mapping[str, Any]]) -> Tensor:
        feat = self.extract_feat(img)
        out_enc = self.encoder(feat, img_metas) if self.encoder is not None else None
        return self.decoder(feat, out_enc, img_metas)
