"""SegRecognizer: ResNet31OCR levels -> FPNOCR -> SegHead, classes from the SegConvertor."""

from __future__ import annotations

from typing import Any

import torch

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.recognizers import SegRecognizer


def seg_config() -> dict[str, Any]:
    """seg_r31_1by16_fpnocr_academic's model at small widths."""
    return {
        "type": "SegRecognizer",
        "backbone": {
            "type": "ResNet31OCR",
            "layers": [1, 2, 5, 3],
            "channels": [4, 8, 16, 32, 64, 64],
            "out_indices": [0, 1, 2, 3],
            "stage4_pool_cfg": {"kernel_size": 2, "stride": 2},
            "last_stage_pool": True,
        },
        "neck": {"type": "FPNOCR", "in_channels": [16, 32, 64, 64], "out_channels": 32},
        "head": {
            "type": "SegHead",
            "in_channels": 32,
            "upsample_param": {"scale_factor": 2.0, "mode": "nearest"},
        },
        "loss": {"type": "SegLoss", "seg_downsample_ratio": 1.0, "seg_with_loss_weight": True},
        "label_convertor": {"type": "SegConvertor", "dict_type": "DICT36", "with_unknown": True},
    }


def test_class_map_at_input_resolution() -> None:
    model = build_model(seg_config())
    assert isinstance(model, SegRecognizer)
    with torch.inference_mode():
        out = model(torch.randn(2, 3, 64, 128), [{}, {}])
    assert out.shape == (2, 38, 64, 128)  # <BG> + DICT36 + <UKN>


def test_mmocr_names() -> None:
    names = set(build_model(seg_config()).state_dict())
    for name in (
        "backbone.conv1_1.weight",
        "neck.lateral_convs.3.bn.running_var",
        "neck.smooth_convs_1x1.2.conv.weight",
        "neck.smooth_convs_3x3.0.bn.weight",
        "head.seg_conv.conv.weight",
        "head.pred_conv.bias",
    ):
        assert name in names
    assert "head.seg_conv.conv.bias" not in names  # ConvModule with BN: no conv bias
