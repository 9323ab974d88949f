"""NRTR: transformer encoder/decoder over ResNet31OCR or the modality-transform backbone."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model

CONVERTOR = {"type": "AttnConvertor", "dict_type": "DICT90", "with_unknown": True}
SIZES = {"d_model": 16, "d_k": 4, "d_v": 4, "d_inner": 32, "n_layers": 2, "n_head": 4}


def nrtr_config(backbone: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "NRTR",
        "backbone": backbone,
        "encoder": {"type": "NRTREncoder", **SIZES},
        "decoder": {"type": "NRTRDecoder", "d_embedding": 16, **SIZES},
        "loss": {"type": "TFLoss"},
        "label_convertor": CONVERTOR,
        "max_seq_len": 6,
    }


def test_nrtr_r31() -> None:
    backbone = {"type": "ResNet31OCR", "layers": [1, 2, 5, 3], "channels": [4, 8, 8, 8, 16, 16],
                "stage4_pool_cfg": {"kernel_size": [2, 1], "stride": [2, 1]},
                "last_stage_pool": True}  # fmt: skip
    model = build_model(nrtr_config(backbone))
    assert "decoder.position_enc.position_table" in model.state_dict()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 32, 64), [{"valid_ratio": 0.75}])
    assert out.shape == (1, 6, 92)
    assert torch.allclose(out.sum(-1), torch.ones(1, 6), atol=1e-5)


def test_nrtr_modality_transform() -> None:
    model = build_model(nrtr_config({"type": "NRTRModalityTransform"}))
    with torch.inference_mode():
        feat = model.backbone(torch.randn(1, 3, 32, 40))
    assert feat.shape == (1, 512, 1, 10)


def test_unsupported_operation_order() -> None:
    cfg = nrtr_config({"type": "NRTRModalityTransform"})
    cfg["encoder"]["operation_order"] = ["ffn"]
    with pytest.raises(ConfigError, match="operation_order"):
        build_model(cfg)
