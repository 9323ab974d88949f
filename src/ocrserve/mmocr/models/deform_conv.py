"""Modulated deformable convolution (DCNv2) in plain PyTorch, registered as mmcv's ``DCNv2``.

Equal to mmcv 1.x's ``ModulatedDeformConv2dPack``: a plain ``conv_offset`` convolution predicts,
per deformable group and kernel tap ``k = i * kw + j``, an offset ``(dy, dx)`` (channels
``2k``, ``2k + 1`` of the first two chunks) and a mask logit (third chunk, through a sigmoid).
Each tap samples the input at ``(y * stride - pad + i * dilation + dy, x * stride - pad + j *
dilation + dx)`` bilinearly, corners outside the map counting as zero and points at or past
``-1``/``H`` giving zero (mmcv's ``dmcn_im2col_bilinear``), multiplies by the mask, and the
columns are multiplied by the weight matrix, then the bias is added, as mmcv's CPU op does.
Parameter names are mmcv's: ``weight``, ``bias`` (optional), ``conv_offset.weight/bias``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from ocrserve.mmocr.models.layers import CONV_LAYERS

__all__ = ["ModulatedDeformConv2dPack", "modulated_deform_conv2d"]


def _bilinear_columns(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    out_size: tuple[int, int],
) -> Tensor:
    """Sampled, masked input: ``N x C x K x Ho x Wo`` for one deformable group's channels."""
    n, c, h, w = x.shape
    kh, kw = kernel
    ho, wo = out_size
    k = kh * kw
    dev = x.device
    base_y = (torch.arange(ho, device=dev) * stride[0] - padding[0]).view(1, ho, 1)
    base_x = (torch.arange(wo, device=dev) * stride[1] - padding[1]).view(1, 1, wo)
    tap_y = (torch.arange(kh, device=dev) * dilation[0]).repeat_interleave(kw).view(k, 1, 1)
    tap_x = (torch.arange(kw, device=dev) * dilation[1]).repeat(kh).view(k, 1, 1)
    off = offset.view(n, k, 2, ho, wo)
    # Integer base position first, then the float offset (mmcv: ``h_in + i * dilation_h + dy``).
    py = (base_y + tap_y).to(x.dtype) + off[:, :, 0]
    px = (base_x + tap_x).to(x.dtype) + off[:, :, 1]
    inside = (py > -1) & (px > -1) & (py < h) & (px < w)
    y0f, x0f = torch.floor(py), torch.floor(px)
    ly, lx = py - y0f, px - x0f
    hy, hx = 1 - ly, 1 - lx
    y0, x0 = y0f.long(), x0f.long()
    y1, x1 = y0 + 1, x0 + 1
    flat = x.reshape(n, c, h * w)

    def corner(yy: Tensor, xx: Tensor) -> Tensor:
        valid = (yy >= 0) & (xx >= 0) & (yy <= h - 1) & (xx <= w - 1)
        index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).view(n, 1, -1).expand(n, c, -1)
        values = torch.gather(flat, 2, index).view(n, c, k, ho, wo)
        return values * valid.unsqueeze(1).to(x.dtype)

    val = (
        (hy * hx).unsqueeze(1) * corner(y0, x0)
        + (hy * lx).unsqueeze(1) * corner(y0, x1)
        + (ly * hx).unsqueeze(1) * corner(y1, x0)
        + (ly * lx).unsqueeze(1) * corner(y1, x1)
    )
    val = val * inside.unsqueeze(1).to(x.dtype)
    return val * mask.view(n, 1, k, ho, wo)


def modulated_deform_conv2d(
    x: Tensor,
    offset: Tensor,
    mask: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
    deform_groups: int = 1,
) -> Tensor:
    """mmcv's ``modulated_deform_conv2d`` forward: offsets ``N x 2*dg*K``, masks ``N x dg*K``."""
    stride_hw: tuple[int, int] = _pair(stride)
    pad_hw: tuple[int, int] = _pair(padding)
    dil_hw: tuple[int, int] = _pair(dilation)
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho = (h + 2 * pad_hw[0] - (dil_hw[0] * (kh - 1) + 1)) // stride_hw[0] + 1
    wo = (w + 2 * pad_hw[1] - (dil_hw[1] * (kw - 1) + 1)) // stride_hw[1] + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"convolution input is too small (output would be {ho}x{wo})")
    k = kh * kw
    cg = c // deform_groups
    cols = torch.cat(
        [
            _bilinear_columns(
                x[:, g * cg : (g + 1) * cg],
                offset[:, g * 2 * k : (g + 1) * 2 * k],
                mask[:, g * k : (g + 1) * k],
                (kh, kw),
                stride_hw,
                pad_hw,
                dil_hw,
                (ho, wo),
            )
            for g in range(deform_groups)
        ],
        dim=1,
    )  # N x C x K x Ho x Wo; column row = channel * K + tap, as mmcv's im2col
    cols = cols.reshape(n, groups, c // groups * k, ho * wo)
    wmat = weight.reshape(groups, c_out // groups, -1)
    # One GEMM per image and group into a zeroed output, as mmcv's op (same summation order).
    out = x.new_zeros(n, groups, c_out // groups, ho * wo)
    for b in range(n):
        for g in range(groups):
            out[b, g].addmm_(wmat[g], cols[b, g])
    out = out.reshape(n, c_out, ho, wo)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


@CONV_LAYERS.register("DCNv2")
class ModulatedDeformConv2dPack(nn.Module):
    """mmcv's ``ModulatedDeformConv2dPack`` (``DCNv2``): a conv that predicts its own offsets."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        deform_groups: int = 1,
        bias: bool | str = True,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups or in_channels % deform_groups:
            raise ValueError("DCNv2: channels must divide by groups and deform_groups")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deform_groups = deform_groups
        self.weight = nn.Parameter(
            torch.empty(out_channels, in_channels // groups, *self.kernel_size)
        )
        self.bias: nn.Parameter | None = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.conv_offset = nn.Conv2d(
            in_channels,
            deform_groups * 3 * self.kernel_size[0] * self.kernel_size[1],
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            bias=True,
        )
        stdv = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -stdv, stdv)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)  # type: ignore[arg-type]

    def forward(self, x: Tensor) -> Tensor:
        o1, o2, mask = torch.chunk(self.conv_offset(x), 3, dim=1)
        return modulated_deform_conv2d(
            x,
            torch.cat((o1, o2), dim=1),
            torch.sigmoid(mask),
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self.dilation,
            self.groups,
            self.deform_groups,
        )
