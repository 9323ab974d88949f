"""MASTER: MMOCR's recognition ResNet with GCA and stage plugins + MasterDecoder (logits)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model


def master_config() -> dict[str, Any]:
    gca = {"type": "GCAModule", "ratio": 0.0625, "n_head": 1, "pooling_type": "att",
           "is_att_scale": False, "fusion_type": "channel_add"}  # fmt: skip
    conv = {"type": "ConvModule", "kernel_size": 3, "stride": 1, "padding": 1,
            "norm_cfg": {"type": "BN"}, "act_cfg": {"type": "ReLU"}}  # fmt: skip
    return {
        "type": "MASTER",
        "backbone": {
            "type": "ResNet",
            "in_channels": 3,
            "stem_channels": [8, 16],
            "block_cfgs": {
                "type": "BasicBlock",
                "plugins": {"cfg": gca, "position": "after_conv2"},
            },
            "arch_layers": [1, 2, 2, 1],
            "arch_channels": [16, 16, 32, 32],
            "strides": [1, 1, 1, 1],
            "plugins": [
                {
                    "cfg": {"type": "Maxpool2d", "kernel_size": 2, "stride": [2, 2]},
                    "stages": [True, True, False, False],
                    "position": "before_stage",
                },
                {
                    "cfg": {"type": "Maxpool2d", "kernel_size": [2, 1], "stride": [2, 1]},
                    "stages": [False, False, True, False],
                    "position": "before_stage",
                },
                {"cfg": conv, "stages": [True, True, True, True], "position": "after_stage"},
            ],  # fmt: skip
        },
        "encoder": None,
        "decoder": {
            "type": "MasterDecoder",
            "d_model": 32,
            "n_head": 4,
            "d_inner": 64,
            "n_layers": 2,
            "feat_size": 120,
        },  # fmt: skip
        "loss": {"type": "TFLoss"},
        "label_convertor": {"type": "AttnConvertor", "dict_type": "DICT90"},
        "max_seq_len": 4,
    }


def test_master_names_and_output() -> None:
    model = build_model(master_config())
    names = set(model.state_dict())
    assert {"backbone.conv_block_after_stage_1.conv.weight",
            "backbone.layer1.0.gca_module.channel_add_conv.1.weight",
            "backbone.layer3.0.downsample.bn.running_var",
            "decoder.decoder_layers.0.attentions.1.attn.in_proj_weight",
            "decoder.decoder_layers.1.ffns.0.layers.0.0.weight",
            "decoder.embedding.lut.weight"} <= names  # fmt: skip
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 48, 80), [{"valid_ratio": 1.0}])
    assert out.shape == (1, 4, 93)  # logits over every class, <PAD> included


def test_master_rejects_unknown_plugin() -> None:
    cfg = master_config()
    cfg["backbone"]["plugins"][0]["cfg"]["type"] = "Nope"
    with pytest.raises(ConfigError, match="plugin type"):
        build_model(cfg)
