"""MMOCR's ``ABINet``, vision model only: ``ResNetABI`` -> ``ABIVisionModel``.

The recognizer's output is the softmax of the vision model's logits, which ``ABIConvertor``
decodes (MMOCR's ``simple_test`` with no language decoder and no fuser). Configs with the
language model (``ABILanguageDecoder`` + ``ABIFuser``: ``abinet_academic``) are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import BACKBONES, ENCODERS, MODELS, PREPROCESSORS
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["ABINet"]


@MODELS.register("ABINet", ignore=("loss", "train_cfg", "test_cfg"))
class ABINet(EncodeDecodeRecognizer):
    """ABINet (https://arxiv.org/abs/2103.06495) without its language model."""

    def __init__(
        self,
        backbone: Mapping[str, Any],
        encoder: Mapping[str, Any],
        label_convertor: Mapping[str, Any],
        preprocessor: Mapping[str, Any] | None = None,
        decoder: Mapping[str, Any] | None = None,
        fuser: Mapping[str, Any] | None = None,
        iter_size: int = 1,
        max_seq_len: int = 40,
    ) -> None:
        if decoder or fuser:
            raise ConfigError(
                "ABINet with a language decoder or fuser (abinet_academic) is not supported; "
                "ABINet vision-only configs (abinet_vision_only_academic) are"
            )
        # Built here rather than by EncodeDecodeRecognizer: ABINet has no decoder to size.
        super(EncodeDecodeRecognizer, self).__init__()
        from ocrserve.mmocr.pipelines.postprocess import build_convertor

        self.label_convertor_cfg = {**label_convertor, "max_seq_len": max_seq_len}
        build_convertor(self.label_convertor_cfg)
        self.max_seq_len = max_seq_len
        self.iter_size = iter_size
        self.preprocessor = PREPROCESSORS.build(preprocessor) if preprocessor else None
        self.backbone = BACKBONES.build(backbone)
        self.encoder = ENCODERS.build(encoder)

    def forward(self, img: Tensor, img_metas: Sequence[Mapping[str, Any]]) -> Tensor:
        assert self.encoder is not None
        out = self.encoder(self.extract_feat(img))
        logits: Tensor = out["logits"]
        return logits.softmax(dim=-1)
