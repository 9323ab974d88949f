"""MMOCR's ``ShallowCNN`` (SATRN): two 3x3 ``ConvModule`` (BN, ReLU), each followed by 2x2 max
pooling; output ``hidden_dim`` channels at 1/4 of the input size."""

from __future__ import annotations

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import BACKBONES
from ocrserve.mmocr.models.layers import ConvModule

__all__ = ["ShallowCNN"]


@BACKBONES.register("ShallowCNN")
class ShallowCNN(nn.Module):
    """``conv1``, ``conv2``, ``pool``."""

    def __init__(self, input_channels: int = 1, hidden_dim: int = 512) -> None:
        super().__init__()
        bn, relu = {"type": "BN"}, {"type": "ReLU"}
        self.conv1 = ConvModule(
            input_channels, hidden_dim // 2, 3, 1, 1, bias=False, norm_cfg=bn, act_cfg=relu
        )
        self.conv2 = ConvModule(
            hidden_dim // 2, hidden_dim, 3, 1, 1, bias=False, norm_cfg=bn, act_cfg=relu
        )
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.conv2(self.pool(self.conv1(x))))
