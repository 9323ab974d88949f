"""DBNet++: modulated deformable convolution (DCNv2) and ResNet ``dcn`` stages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.deform_conv import ModulatedDeformConv2dPack, modulated_deform_conv2d
from ocrserve.mmocr.models.layers import build_conv_layer


def _naive(x, offset, mask, weight, stride, padding, dilation, deform_groups):  # type: ignore[no-untyped-def]
    """mmcv's im2col loop written out pixel by pixel (float64)."""
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * padding - dilation * (kh - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (kw - 1) - 1) // stride + 1
    cg = c // deform_groups
    out = torch.zeros(n, c_out, ho, wo, dtype=torch.float64)
    for b in range(n):
        for oy in range(ho):
            for ox in range(wo):
                cols = torch.zeros(c, kh * kw, dtype=torch.float64)
                for ch in range(c):
                    g = ch // cg
                    for i in range(kh):
                        for j in range(kw):
                            k = i * kw + j
                            py = (
                                oy * stride
                                - padding
                                + i * dilation
                                + float(offset[b, g * 2 * kh * kw + 2 * k, oy, ox])
                            )
                            px = (
                                ox * stride
                                - padding
                                + j * dilation
                                + float(offset[b, g * 2 * kh * kw + 2 * k + 1, oy, ox])
                            )
                            val = 0.0
                            if -1 < py < h and -1 < px < w:
                                y0, x0 = math.floor(py), math.floor(px)
                                for yy, xx, wt in (
                                    (y0, x0, (1 - (py - y0)) * (1 - (px - x0))),
                                    (y0, x0 + 1, (1 - (py - y0)) * (px - x0)),
                                    (y0 + 1, x0, (py - y0) * (1 - (px - x0))),
                                    (y0 + 1, x0 + 1, (py - y0) * (px - x0)),
                                ):
                                    if 0 <= yy < h and 0 <= xx < w:
                                        val += wt * float(x[b, ch, yy, xx])
                            cols[ch, k] = val * float(mask[b, g * kh * kw + k, oy, ox])
                out[b, :, oy, ox] = weight.double().reshape(c_out, -1) @ cols.reshape(-1)
    return out


@pytest.mark.parametrize(("stride", "padding", "dilation", "groups"), [(1, 1, 1, 1), (2, 2, 2, 2)])
def test_dcnv2_matches_the_sampling_loop(
    stride: int, padding: int, dilation: int, groups: int
) -> None:
    torch.manual_seed(0)
    x = torch.randn(1, 4, 6, 7)
    weight = torch.randn(3, 4, 3, 3)
    ho = (6 + 2 * padding - 2 * dilation - 1) // stride + 1
    wo = (7 + 2 * padding - 2 * dilation - 1) // stride + 1
    offset = torch.randn(1, groups * 18, ho, wo) * 2.5  # lands points outside the map too
    mask = torch.rand(1, groups * 9, ho, wo)
    got = modulated_deform_conv2d(
        x, offset, mask, weight, None, stride, padding, dilation, 1, groups
    )
    want = _naive(x, offset, mask, weight, stride, padding, dilation, groups)
    torch.testing.assert_close(got.double(), want, atol=1e-4, rtol=1e-4)


def test_dcnv2_with_zero_offsets_is_half_a_plain_convolution() -> None:
    torch.manual_seed(1)
    conv = ModulatedDeformConv2dPack(4, 6, 3, stride=2, padding=1, groups=2, bias=True)
    torch.nn.init.normal_(conv.bias)
    x = torch.randn(2, 4, 9, 8)
    with torch.inference_mode():
        got = conv(x)  # conv_offset starts at zero: no offsets, masks sigmoid(0) = 0.5
        want = F.conv2d(x, conv.weight * 0.5, conv.bias, stride=2, padding=1, groups=2)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert set(conv.state_dict()) == {"weight", "bias", "conv_offset.weight", "conv_offset.bias"}
    assert conv.conv_offset.out_channels == 27


def test_dcnv2_is_a_registered_conv_layer() -> None:
    layer = build_conv_layer({"type": "DCNv2", "deform_groups": 1}, 8, 8, 3, padding=1, bias=False)
    assert isinstance(layer, ModulatedDeformConv2dPack) and layer.bias is None


def test_resnet_dcn_stages_have_mmcv_names() -> None:
    cfg = {
        "type": "DBNet",
        "backbone": {
            "type": "mmdet.ResNet",
            "depth": 50,
            "base_channels": 4,
            "norm_cfg": {"type": "BN", "requires_grad": True},
            "style": "pytorch",
            "dcn": {"type": "DCNv2", "deform_groups": 1, "fallback_on_stride": False},
            "stage_with_dcn": (False, True, True, True),
        },
        "neck": {
            "type": "FPNC",
            "in_channels": [16, 32, 64, 128],
            "lateral_channels": 16,
            "out_channels": 4,
            "asf_cfg": {"attention_type": "ScaleChannelSpatial"},
        },
        "bbox_head": {"type": "DBHead", "in_channels": 16},
    }
    model = build_model(cfg)
    keys = set(model.state_dict())
    assert "backbone.layer2.0.conv2.conv_offset.weight" in keys
    assert "backbone.layer1.0.conv2.conv_offset.weight" not in keys
    assert "neck.asf_attn.attention_wise.conv.weight" in keys
    with torch.inference_mode():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)
