"""MMOCR's ``ABINet``: ``ResNetABI`` -> ``ABIVisionModel`` [-> (``ABILanguageDecoder`` ->
``ABIFuser``) x ``iter_size``].

Vision only (``abinet_vision_only_academic``), the output is the softmax of the vision model's
logits. With the language model (``abinet_academic``), each of the ``iter_size`` iterations runs
the language decoder on the previous logits (the vision model's, then the fuser's) and fuses its
feature with the vision feature; the output is the softmax of the last fuser's logits, which
``ABIConvertor`` decodes (MMOCR's ``simple_test``). `ABINet.run` returns every stage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from torch import Tensor

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import (
    BACKBONES,
    DECODERS,
    ENCODERS,
    FUSERS,
    MODELS,
    PREPROCESSORS,
)
from ocrserve.mmocr.models.recognizers.encode_decode import EncodeDecodeRecognizer

__all__ = ["ABINet", "ABINetStages"]


class ABINetStages(TypedDict):
    """Every stage of one `ABINet.run`: the vision model's dict (``feature``, ``logits``,
    ``attn_scores``), then per iteration the language decoder's (``feature``, ``logits``) and
    the fuser's (``logits``), and the logits the text is read from."""

    encoder: dict[str, Tensor]
    decoders: list[dict[str, Tensor]]
    fusers: list[dict[str, Tensor]]
    logits: Tensor


@MODELS.register("ABINet", ignore=("loss", "train_cfg", "test_cfg"))
class ABINet(EncodeDecodeRecognizer):
    """ABINet (https://arxiv.org/abs/2103.06495): ``backbone``, ``encoder`` (the vision model),
    optional ``decoder`` (the language model) and ``fuser``."""

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
        if fuser and not decoder:
            raise ConfigError("ABINet: a fuser needs a language decoder (ABILanguageDecoder)")
        # Built here rather than by EncodeDecodeRecognizer: the decoder is optional.
        super(EncodeDecodeRecognizer, self).__init__()
        from ocrserve.mmocr.pipelines.postprocess import build_convertor

        self.label_convertor_cfg = {**label_convertor, "max_seq_len": max_seq_len}
        convertor = build_convertor(self.label_convertor_cfg)
        self.max_seq_len = max_seq_len
        self.iter_size = iter_size
        self.preprocessor = PREPROCESSORS.build(preprocessor) if preprocessor else None
        self.backbone = BACKBONES.build(backbone)
        self.encoder = ENCODERS.build(encoder)
        # Vision-only ABINet has no decoder, as in MMOCR (the base class always has one).
        self.decoder = None  # type: ignore[assignment]
        if decoder:
            self.decoder = DECODERS.build(
                decoder,
                num_classes=convertor.num_classes(),
                start_idx=convertor.start_idx,
                padding_idx=convertor.padding_idx,
                max_seq_len=max_seq_len,
            )
        self.fuser = FUSERS.build(fuser) if fuser else None

    def run(
        self, img: Tensor, img_metas: Sequence[Mapping[str, Any]] | None = None
    ) -> ABINetStages:
        """The network, keeping every stage's output."""
        assert self.encoder is not None
        feat = self.extract_feat(img)
        out_enc: dict[str, Tensor] = self.encoder(feat)
        logits = out_enc["logits"]
        decoders: list[dict[str, Tensor]] = []
        fusers: list[dict[str, Tensor]] = []
        if self.decoder is not None:
            for _ in range(self.iter_size):
                out_dec: dict[str, Tensor] = self.decoder(feat, logits, img_metas)
                decoders.append(out_dec)
                if self.fuser is not None:
                    out_fuser: dict[str, Tensor] = self.fuser(
                        out_enc["feature"], out_dec["feature"]
                    )
                    fusers.append(out_fuser)
                    logits = out_fuser["logits"]
        if fusers:
            final = fusers[-1]["logits"]
        elif decoders:
            final = decoders[-1]["logits"]
        else:
            final = out_enc["logits"]
        return {"encoder": out_enc, "decoders": decoders, "fusers": fusers, "logits": final}

    def forward(self, img: Tensor, img_metas: Sequence[Mapping[str, Any]]) -> Tensor:
        return self.run(img, img_metas)["logits"].softmax(dim=-1)
