"""CRNN: VeryDeepVgg + CRNNDecoder, class count from the label convertor."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.recognizers import EncodeDecodeRecognizer


def crnn_config(**convertor: Any) -> dict[str, Any]:
    """MMOCR 0.x's crnn_academic_dataset model config."""
    label_convertor = {
        "type": "CTCConvertor",
        "dict_type": "DICT36",
        "with_unknown": False,
        "lower": True,
        **convertor,
    }
    return {
        "type": "CRNNNet",
        "preprocessor": None,
        "backbone": {"type": "VeryDeepVgg", "leaky_relu": False, "input_channels": 1},
        "encoder": None,
        "decoder": {"type": "CRNNDecoder", "in_channels": 512, "rnn_flag": True},
        "loss": {"type": "CTCLoss"},
        "label_convertor": label_convertor,
        "pretrained": None,
    }


def test_crnn_output_and_names() -> None:
    model = build_model(crnn_config())
    assert isinstance(model, EncodeDecodeRecognizer)
    metas = [{"valid_ratio": 1.0}] * 2
    with torch.inference_mode():
        out = model(torch.rand(2, 1, 32, 64), metas)
    assert out.shape == (2, 17, 37)  # W / 4 + 1 columns, <BLK> + 36 characters
    keys = set(model.state_dict())
    assert {
        "decoder.decoder.0.rnn.weight_ih_l0_reverse",
        "decoder.decoder.1.embedding.bias",
    } <= keys
    assert model.state_dict()["decoder.decoder.1.embedding.weight"].shape == (37, 512)


def test_num_classes_follow_the_dictionary() -> None:
    model = build_model(crnn_config(dict_type="DICT90", with_unknown=True))
    assert model.state_dict()["decoder.decoder.1.embedding.weight"].shape[0] == 92


def test_conv_decoder_variant() -> None:
    cfg = crnn_config()
    cfg["decoder"] = {"type": "CRNNDecoder", "in_channels": 512, "rnn_flag": False}
    model: Any = build_model(cfg)
    assert set(model.decoder.state_dict()) == {"decoder.weight", "decoder.bias"}
    with torch.inference_mode():
        assert model(torch.rand(1, 1, 32, 32), [{}]).shape == (1, 9, 37)


def test_recognizer_config_errors() -> None:
    cfg = crnn_config()
    cfg["label_convertor"] = None
    with pytest.raises(ConfigError, match="label_convertor"):
        build_model(cfg)
    cfg = crnn_config(dict_type="DICT12")
    with pytest.raises(ConfigError, match="dict_type 'DICT12'; supported: DICT36, DICT37"):
        build_model(cfg)
    model: Any = build_model(crnn_config())
    with pytest.raises(ValueError, match="height 1"):
        model.decoder(torch.zeros(1, 512, 2, 4), None, [{}])
