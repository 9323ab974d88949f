"""MMOCR's ``VeryDeepVgg``: CRNN's seven-convolution VGG backbone.

Layer names (``cnn.conv0``, ``cnn.batchnorm2``, ``cnn.pooling0``, ...) are MMOCR's; MMOCR 1.x calls
the same network ``MiniVGG`` with the same names. A 32-pixel-high input becomes a feature map of
height 1 and width ``W / 4 + 1``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ocrserve.mmocr.models.builder import BACKBONES

__all__ = ["VeryDeepVgg"]

_KERNELS = (3, 3, 3, 3, 3, 3, 2)
_PADDINGS = (1, 1, 1, 1, 1, 1, 0)
_CHANNELS = (64, 128, 256, 256, 512, 512, 512)
_WITH_BN = (False, False, True, False, True, False, True)


@BACKBONES.register("VeryDeepVgg", "MiniVGG")
class VeryDeepVgg(nn.Module):
    """conv0 pool conv1 pool conv2(bn) conv3 pool(2x1) conv4(bn) conv5 pool(2x1) conv6(bn)."""

    def __init__(self, leaky_relu: bool = True, input_channels: int = 3) -> None:
        super().__init__()
        self.channels = list(_CHANNELS)
        self.cnn = nn.Sequential()
        pools: dict[int, nn.Module] = {
            0: nn.MaxPool2d(2, 2),
            1: nn.MaxPool2d(2, 2),
            3: nn.MaxPool2d((2, 2), (2, 1), (0, 1)),
            5: nn.MaxPool2d((2, 2), (2, 1), (0, 1)),
        }
        for i, n_out in enumerate(_CHANNELS):
            n_in = input_channels if i == 0 else _CHANNELS[i - 1]
            self.cnn.add_module(f"conv{i}", nn.Conv2d(n_in, n_out, _KERNELS[i], 1, _PADDINGS[i]))
            if _WITH_BN[i]:
                self.cnn.add_module(f"batchnorm{i}", nn.BatchNorm2d(n_out))
            relu: nn.Module = nn.LeakyReLU(0.2, inplace=True) if leaky_relu else nn.ReLU(True)
            self.cnn.add_module(f"relu{i}", relu)
            if i in pools:
                self.cnn.add_module(f"pooling{len([p for p in pools if p < i])}", pools[i])

    def out_channels(self) -> int:
        return self.channels[-1]

    def forward(self, x: Tensor) -> Tensor:
        return self.cnn(x)
