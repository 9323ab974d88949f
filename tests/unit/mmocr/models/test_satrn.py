"""SATRN: ShallowCNN + SatrnEncoder (2D positional encoding added in place) + NRTRDecoder."""

from __future__ import annotations

import torch

from ocrserve.mmocr.models import build_model

SIZES = {"d_model": 16, "d_k": 4, "d_v": 4, "d_inner": 32, "n_layers": 1, "n_head": 4}


def test_satrn() -> None:
    model = build_model(
        {
            "type": "SATRN",
            "backbone": {"type": "ShallowCNN", "input_channels": 3, "hidden_dim": 16},
            "encoder": {"type": "SatrnEncoder", "n_position": 100, **SIZES},
            "decoder": {"type": "NRTRDecoder", "d_embedding": 16, **SIZES},
            "loss": {"type": "TFLoss"},
            "label_convertor": {"type": "AttnConvertor", "dict_type": "DICT90"},
            "max_seq_len": 5,
        }
    )
    assert "encoder.position_enc.h_position_encoder" in model.state_dict()
    img = torch.randn(1, 3, 32, 100)
    with torch.inference_mode():
        feat = model.backbone(img)
        before = feat.clone()
        model.encoder(feat, [{"valid_ratio": 1.0}])
        # MMOCR's quirk: the backbone output is overwritten with 2 * feat + encodings.
        assert not torch.equal(feat, before)
        out = model(img, [{"valid_ratio": 1.0}])
    assert feat.shape == (1, 16, 8, 25)
    assert out.shape == (1, 5, 92)
