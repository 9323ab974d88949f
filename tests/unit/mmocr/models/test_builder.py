"""Registries by MMOCR type name: lookups, errors listing the supported names, config checks."""

from __future__ import annotations

import pytest
from torch import nn

from ocrserve.errors import ConfigError
from ocrserve.mmocr.models import MODELS, build_model
from ocrserve.mmocr.models.builder import BACKBONES, DECODERS, HEADS, NECKS
from ocrserve.mmocr.models.layers import CONV_LAYERS, NORM_LAYERS, ConvModule, build_norm_layer
from ocrserve.registry import Registry


def test_supported_names() -> None:
    assert {"DBNet", "CRNNNet"} <= set(MODELS.names())
    assert {"mmdet.ResNet", "VeryDeepVgg", "MiniVGG"} <= set(BACKBONES.names())
    assert "FPNC" in NECKS.names() and "DBHead" in HEADS.names()
    assert "CRNNDecoder" in DECODERS.names()


def test_unknown_type_lists_supported_names() -> None:
    with pytest.raises(
        ConfigError, match=r"Unsupported model type 'NoDetector'; supported: .*CRNNNet.*DBNet"
    ):
        build_model({"type": "NoDetector"})
    with pytest.raises(ConfigError, match=r"backbone type 'NoNet'; supported: .*mmdet\.ResNet"):
        BACKBONES.build({"type": "NoNet"})
    # mmdet's ResNet and MMOCR's own recognition ResNet are different classes.
    assert BACKBONES.get("ResNet") is not BACKBONES.get("mmdet.ResNet")


def test_config_must_name_a_type() -> None:
    with pytest.raises(ConfigError, match="'type' name"):
        build_model({"backbone": {}})
    with pytest.raises(ConfigError, match="'type' name"):
        build_model("DBNet")  # type: ignore[arg-type]


def test_unexpected_keys_are_errors_but_training_keys_are_ignored() -> None:
    with pytest.raises(ConfigError, match="Bad backbone config for 'mmdet.ResNet'.*colour"):
        BACKBONES.build({"type": "mmdet.ResNet", "depth": 18, "colour": "red"})
    resnet = BACKBONES.build(
        {
            "type": "mmdet.ResNet",
            "depth": 18,
            "frozen_stages": 2,
            "norm_eval": True,
            "init_cfg": {"type": "Pretrained", "checkpoint": "torchvision://resnet18"},
            "pretrained": None,
        }
    )
    assert isinstance(resnet, nn.Module)


def test_overrides_replace_config_values() -> None:
    registry: Registry[dict[str, int]] = Registry("thing")

    @registry.register("Thing", ignore=("skipped",))
    def thing(a: int, b: int = 2) -> dict[str, int]:
        return {"a": a, "b": b}

    assert registry.build({"type": "Thing", "a": 1, "skipped": 9}, b=5) == {"a": 1, "b": 5}
    assert "Thing" in registry
    with pytest.raises(ValueError, match="registered twice"):
        registry.register("Thing")(thing)


def test_layers_registries() -> None:
    with pytest.raises(
        ConfigError, match="convolution layer type 'DCN'; supported: Conv, Conv2d, DCNv2"
    ):
        CONV_LAYERS.get("DCN")
    assert build_norm_layer({"type": "BN"}, 8, postfix=1)[0] == "bn1"
    assert build_norm_layer({"type": "GN", "num_groups": 2}, 8)[0] == "gn"
    with pytest.raises(ConfigError, match="norm layer type 'LN'"):
        NORM_LAYERS.get("LN")


def test_conv_module_names_as_mmcv() -> None:
    plain = ConvModule(3, 4, 3, padding=1, norm_cfg=None, act_cfg=None)
    assert set(plain.state_dict()) == {"conv.weight", "conv.bias"}
    bn = ConvModule(3, 4, 3, norm_cfg={"type": "BN"})
    assert "bn.running_mean" in bn.state_dict() and "conv.bias" not in bn.state_dict()
    with pytest.raises(ConfigError, match="activation type 'Mish'"):
        ConvModule(3, 4, 1, act_cfg={"type": "Mish"})
