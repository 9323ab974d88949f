"""mmdet's ResNet and MMOCR's VeryDeepVgg: parameter names, strides, output shapes."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models.builder import BACKBONES


def _resnet(**cfg: object) -> Any:
    return BACKBONES.build({"type": "mmdet.ResNet", **cfg}).eval()


def test_resnet18_names_and_shapes() -> None:
    model = _resnet(depth=18, style="caffe")
    keys = model.state_dict().keys()
    assert "conv1.weight" in keys and "bn1.running_var" in keys
    assert "layer1.0.conv2.weight" in keys and "layer1.0.downsample.0.weight" not in keys
    assert "layer2.0.downsample.0.weight" in keys and "layer2.0.downsample.1.weight" in keys
    assert len([k for k in keys if k.endswith("num_batches_tracked")]) == 20
    with torch.inference_mode():
        outs = model(torch.zeros(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [
        (1, 64, 16, 24),
        (1, 128, 8, 12),
        (1, 256, 4, 6),
        (1, 512, 2, 3),
    ]


@pytest.mark.parametrize("style, stride_on", [("pytorch", "conv2"), ("caffe", "conv1")])
def test_resnet50_bottleneck_stride(style: str, stride_on: str) -> None:
    model = _resnet(depth=50, style=style, out_indices=(3,))
    block = model.layer2[0]
    assert getattr(block, stride_on).stride == (2, 2)
    assert block.conv3.out_channels == 512
    assert model.state_dict()["layer4.2.bn3.weight"].shape == (2048,)
    with torch.inference_mode():
        (out,) = model(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 2048, 2, 2)


def test_resnet_variants() -> None:
    model = _resnet(depth=18, deep_stem=True, avg_down=True, base_channels=8, stem_channels=16)
    keys = model.state_dict().keys()
    assert "stem.0.weight" in keys and "stem.7.weight" in keys and "conv1.weight" not in keys
    # avg_down puts an average pool (no parameters) before the 1x1 conv.
    assert "layer2.0.downsample.1.weight" in keys and "layer2.0.downsample.2.running_mean" in keys


def test_resnet_config_errors() -> None:
    with pytest.raises(ConfigError, match="depth 20; supported: 18, 34, 50, 101, 152"):
        _resnet(depth=20)
    with pytest.raises(ConfigError, match="style"):
        _resnet(depth=50, style="tensorflow")
    with pytest.raises(ConfigError, match="convolution layer type 'DCN'"):
        _resnet(
            depth=50,
            dcn={"type": "DCN", "deform_groups": 1, "fallback_on_stride": False},
            stage_with_dcn=(False, True, True, True),
        )
    with pytest.raises(ConfigError, match="plugins"):
        _resnet(depth=50, plugins=[{"cfg": {"type": "GCAModule"}, "position": "after_conv3"}])


def test_very_deep_vgg() -> None:
    model: Any = BACKBONES.build({"type": "VeryDeepVgg", "leaky_relu": False, "input_channels": 1})
    keys = list(model.state_dict())
    assert keys[:2] == ["cnn.conv0.weight", "cnn.conv0.bias"]
    assert {"cnn.batchnorm2.weight", "cnn.batchnorm4.weight", "cnn.batchnorm6.weight"} <= set(keys)
    assert model.out_channels() == 512
    with torch.inference_mode():
        out = model.eval()(torch.zeros(2, 1, 32, 100))
    assert out.shape == (2, 512, 1, 26)  # width / 4 + 1
