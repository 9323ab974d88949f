"""DBNet: FPNC neck, DBHead, the whole detector and its MMOCR 1.x key names."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.builder import HEADS, NECKS
from ocrserve.mmocr.models.detectors import SingleStageTextDetector
from ocrserve.mmocr.models.keymap import rename_mmocr1_keys


def dbnet_config(base: int = 8, depth: int = 18, **head: Any) -> dict[str, Any]:
    """A small DBNet config in MMOCR 0.x form (the r18 config with fewer channels)."""
    widths = [base * 2**i * (4 if depth >= 50 else 1) for i in range(4)]
    return {
        "type": "DBNet",
        "backbone": {
            "type": "mmdet.ResNet",
            "depth": depth,
            "base_channels": base,
            "num_stages": 4,
            "out_indices": (0, 1, 2, 3),
            "frozen_stages": -1,
            "norm_cfg": {"type": "BN", "requires_grad": True},
            "norm_eval": False,
            "style": "caffe",
        },
        "neck": {"type": "FPNC", "in_channels": widths, "lateral_channels": 16, "out_channels": 4},
        "bbox_head": {
            "type": "DBHead",
            "in_channels": 16,
            "loss": {"type": "DBLoss", "alpha": 5.0, "beta": 10.0, "bbce_loss": True},
            **head,
        },
        "train_cfg": None,
        "test_cfg": None,
    }


def test_dbnet_output_and_names() -> None:
    model = build_model(dbnet_config())
    assert isinstance(model, SingleStageTextDetector) and not model.training
    with torch.inference_mode():
        out = model(torch.rand(2, 3, 64, 96))
    assert out.shape == (2, 3, 64, 96)  # probability, threshold, binary at input size
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    keys = set(model.state_dict())
    assert {"neck.lateral_convs.3.conv.weight", "neck.smooth_convs.0.conv.weight"} <= keys
    assert "neck.lateral_convs.0.conv.bias" not in keys  # bias_on_lateral=False
    assert {"bbox_head.binarize.6.bias", "bbox_head.threshold.6.weight"} <= keys
    assert "bbox_head.threshold.0.bias" not in keys and "bbox_head.binarize.0.bias" not in keys


def test_dbhead_binary_map_is_the_steep_sigmoid() -> None:
    head = HEADS.build({"type": "DBHead", "in_channels": 8}).eval()
    with torch.inference_mode():
        out = head(torch.rand(1, 8, 4, 4))
    expected = torch.reciprocal(1 + torch.exp(-50 * (out[:, 0] - out[:, 1])))
    assert torch.equal(out[:, 2], expected)


def _detector(cfg: dict[str, Any]) -> SingleStageTextDetector:
    model = build_model(cfg)
    assert isinstance(model, SingleStageTextDetector)
    return model


def test_postprocessor_config_defaults_and_legacy_keys() -> None:
    model = _detector(dbnet_config())
    assert model.postprocessor_config() == {"type": "DBPostprocessor", "text_repr_type": "quad"}
    legacy = _detector(dbnet_config(text_repr_type="poly"))
    assert legacy.postprocessor_config()["text_repr_type"] == "poly"
    given = _detector(
        dbnet_config(postprocessor={"type": "DBPostprocessor", "text_repr_type": "poly"})
    )
    assert given.postprocessor_config()["text_repr_type"] == "poly"
    assert given.downsample_ratio == 1.0


def test_fpnc_options() -> None:
    neck = NECKS.build(
        {
            "type": "FPNC",
            "in_channels": [4, 8],
            "lateral_channels": 8,
            "out_channels": 4,
            "bn_re_on_lateral": True,
            "asf_cfg": {"attention_type": "ScaleChannelSpatial"},
            "conv_after_concat": True,
        }
    ).eval()
    keys = set(neck.state_dict())
    assert {"lateral_convs.0.bn.running_mean", "asf_conv.conv.bias", "out_conv.bn.weight"} <= keys
    assert {"asf_attn.channel_wise.0.conv.weight", "asf_attn.attention_wise.conv.weight"} <= keys
    with torch.inference_mode():
        out = neck([torch.rand(1, 4, 8, 8), torch.rand(1, 8, 4, 4)])
    assert out.shape == (1, 8, 8, 8)
    with pytest.raises(ConfigError, match="ScaleChannelSpatial"):
        NECKS.build({"type": "FPNC", "in_channels": [4], "asf_cfg": {"attention_type": "X"}})


def test_resnet50_dbnet_builds() -> None:
    model = build_model(dbnet_config(base=4, depth=50))
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_mmocr1_det_head_names_map_back() -> None:
    state = build_model(dbnet_config()).state_dict()
    renamed = {k.replace("bbox_head.", "det_head.", 1): v for k, v in state.items()}
    mapped = rename_mmocr1_keys(renamed)
    assert list(mapped) == list(state)
    assert rename_mmocr1_keys(state) == state  # 0.x names stay
    mixed = {**renamed, "bbox_head.extra": torch.zeros(1)}
    assert "det_head.binarize.0.weight" in rename_mmocr1_keys(mixed)  # left for the key check
