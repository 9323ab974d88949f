"""ABINet, vision model only: ResNetABI + ABIVisionModel; the language model is refused."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model


def abinet_config() -> dict[str, Any]:
    return {
        "type": "ABINet",
        "backbone": {"type": "ResNetABI", "stem_channels": 4, "base_channels": 4},
        "encoder": {
            "type": "ABIVisionModel",
            "encoder": {
                "type": "TransformerEncoder",
                "n_layers": 1,
                "n_head": 4,
                "d_model": 64,
                "d_inner": 32,
            },
            "decoder": {
                "type": "ABIVisionDecoder",
                "in_channels": 64,
                "num_channels": 8,
                "use_result": "feature",
                "num_chars": 37,
                "max_seq_len": 26,
            },
        },  # fmt: skip
        "loss": {"type": "ABILoss"},
        "label_convertor": {
            "type": "ABIConvertor",
            "dict_type": "DICT36",
            "with_unknown": False,
            "with_padding": False,
            "lower": True,
        },  # fmt: skip
        "max_seq_len": 26,
        "iter_size": 1,
    }


def test_abinet_vision_only() -> None:
    model = build_model(abinet_config())
    names = set(model.state_dict())
    assert "encoder.encoder.transformer.0.ffns.0.layers.1.weight" in names
    assert "encoder.decoder.k_decoder.3.1.conv.weight" in names
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 32, 128), [{"valid_ratio": 1.0}])
    assert out.shape == (1, 26, 37)
    assert torch.allclose(out.sum(-1), torch.ones(1, 26), atol=1e-5)


def test_abinet_language_model_is_refused() -> None:
    cfg = abinet_config()
    cfg["decoder"] = {"type": "ABILanguageDecoder"}
    with pytest.raises(ConfigError, match="language decoder"):
        build_model(cfg)
