"""RobustScanner: hybrid (sequence) and position attention branches, fused."""

from __future__ import annotations

import torch

from ocrserve.mmocr.models import build_model


def test_robust_scanner() -> None:
    model = build_model(
        {
            "type": "RobustScanner",
            "backbone": {"type": "ResNet31OCR", "channels": [4, 8, 8, 8, 16, 16, 16]},
            "encoder": {"type": "ChannelReductionEncoder", "in_channels": 16, "out_channels": 8},
            "decoder": {
                "type": "RobustScannerDecoder",
                "dim_input": 16,
                "dim_model": 8,
                "hybrid_decoder": {"type": "SequenceAttentionDecoder"},
                "position_decoder": {"type": "PositionAttentionDecoder"},
            },
            "loss": {"type": "SARLoss"},
            "label_convertor": {"type": "AttnConvertor", "dict_type": "DICT36"},
            "max_seq_len": 4,
        }  # fmt: skip
    )
    names = set(model.state_dict())
    assert "decoder.position_decoder.position_aware_module.mixer.2.weight" in names
    assert "decoder.hybrid_decoder.sequence_layer.weight_hh_l1" in names
    assert not any(n.startswith("decoder.hybrid_decoder.prediction") for n in names)
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 48, 48), [{"valid_ratio": 1.0}, {"valid_ratio": 0.4}])
    assert out.shape == (2, 4, 38)  # DICT36 + <UKN> + <BOS/EOS> + <PAD>, minus <PAD>
