"""ABINet: ResNetABI + ABIVisionModel, alone or with ABILanguageDecoder + ABIFuser iterations."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.builder import FUSERS
from ocrserve.mmocr.models.decoders.abinet_language_decoder import ABILanguageDecoder, text_lengths
from ocrserve.mmocr.models.fusers.abi_fuser import ABIFuser
from ocrserve.mmocr.models.recognizers.abinet import ABINet


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


def language_config(iter_size: int = 3) -> dict[str, Any]:
    cfg = abinet_config()
    cfg["decoder"] = {
        "type": "ABILanguageDecoder", "d_model": 64, "n_head": 4, "d_inner": 32, "n_layers": 2,
        "detach_tokens": True, "use_self_attn": False, "pad_idx": 36, "num_chars": 37,
        "max_seq_len": 26,
    }  # fmt: skip
    cfg["fuser"] = {"type": "ABIFuser", "d_model": 64, "num_chars": 37, "max_seq_len": 26}
    cfg["iter_size"] = iter_size
    return cfg


def test_abinet_with_language_model_runs_every_iteration() -> None:
    model = build_model(language_config())
    assert isinstance(model, ABINet)
    names = set(model.state_dict())
    assert {"decoder.proj.weight", "decoder.token_encoder.position_table",
            "decoder.decoder_layers.1.attentions.0.attn.in_proj_weight",
            "decoder.decoder_layers.1.norms.1.bias", "fuser.w_att.weight", "fuser.cls.bias",
            } <= names  # fmt: skip
    img = torch.randn(2, 3, 32, 128)
    metas = [{"valid_ratio": 1.0}, {"valid_ratio": 1.0}]
    with torch.inference_mode():
        stages = model.run(img, metas)
        out = model(img, metas)
    assert len(stages["decoders"]) == len(stages["fusers"]) == 3
    assert stages["decoders"][0]["feature"].shape == (2, 26, 64)
    assert stages["logits"] is stages["fusers"][-1]["logits"]
    assert torch.equal(out, stages["logits"].softmax(-1))
    # A batch gives each image what it gets alone (lengths and masks are per image).
    with torch.inference_mode():
        alone = model(img[1:], metas[1:])
    assert torch.allclose(out[1:], alone, atol=1e-5)


def test_language_model_lengths_and_masks() -> None:
    logits = torch.zeros(4, 6, 5)
    logits[0, 2, 4] = logits[0, 4, 4] = 1  # first end at 2: length 3
    logits[1, 0, 4] = 1  # end first: clamped to 2
    logits[2, :, 1] = 1  # no end: the whole sequence
    logits[3, 5, 4] = 1  # end last
    assert text_lengths(logits, end_idx=4, max_len=6).tolist() == [3, 2, 6, 6]
    decoder = ABILanguageDecoder(d_model=8, n_head=2, d_inner=16, n_layers=1, max_seq_len=6,
                                 num_chars=5, pad_idx=4).eval()  # fmt: skip
    with torch.inference_mode():
        out = decoder(None, logits[:1])
        # Logits past the length (3) are masked keys: changing them changes nothing.
        changed = logits[:1].clone()
        changed[0, 3:, 0] = 5.0
        again = decoder(None, changed)
    assert out["logits"].shape == (1, 6, 5)
    assert torch.allclose(out["feature"], again["feature"], atol=1e-6)


def test_fuser_gates_between_vision_and_language() -> None:
    fuser = ABIFuser(d_model=4, num_chars=3).eval()
    vision, language = torch.randn(1, 2, 4), torch.randn(1, 2, 4)
    with torch.no_grad():
        fuser.w_att.weight.zero_()
        fuser.w_att.bias.fill_(100.0)  # gate 1: the language feature alone
        assert torch.allclose(fuser(vision, language)["logits"], fuser.cls(language))
        fuser.w_att.bias.fill_(-100.0)  # gate 0: the vision feature alone
        assert torch.allclose(fuser(vision, language)["logits"], fuser.cls(vision))


def test_abinet_fuser_needs_a_language_decoder() -> None:
    cfg = language_config()
    del cfg["decoder"]
    with pytest.raises(ConfigError, match="fuser needs a language decoder"):
        build_model(cfg)
    assert "ABIFuser" in FUSERS.names()
