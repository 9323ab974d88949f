"""Rotated RoI-Align in PyTorch: mmcv 1.x's ``RoIAlignRotated`` (CPU kernel), for DRRG.

Each RoI is ``(batch index, centre x, centre y, width, height, angle)``. Its box is cut into
``pooled_height x pooled_width`` bins; each bin averages a grid of bilinear samples, the grid
``ceil(height / pooled_height) x ceil(width / pooled_width)`` unless ``sampling_ratio`` fixes it.
Sample points are rotated by the angle (counter-clockwise in image space, or clockwise when
asked) about the centre. With ``aligned`` the centre is shifted by half a pixel. Samples more
than a pixel outside the map count as 0; the others are clamped to the map, as mmcv does
(``mmcv/ops/csrc/pytorch/cpu/roi_align_rotated.cpp``). The grid differs from RoI to RoI, so the
samples are taken one grid position at a time over all RoIs and bins, adding in mmcv's order.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["roi_align_rotated"]


def roi_align_rotated(
    features: Tensor,
    rois: Tensor,
    output_size: tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = 0,
    aligned: bool = True,
    clockwise: bool = False,
) -> Tensor:
    """``features`` ``N x C x H x W``, ``rois`` ``R x 6`` -> ``R x C x out_h x out_w``."""
    if rois.ndim != 2 or rois.shape[1] != 6:
        raise ValueError(f"rois must be R x 6, got {tuple(rois.shape)}")
    pooled_h, pooled_w = output_size
    _, channels, height, width = features.shape
    num = rois.shape[0]
    dtype = features.dtype
    out = features.new_zeros((num, channels, pooled_h, pooled_w))
    if num == 0:
        return out
    rois = rois.to(features.device, dtype)
    batch = rois[:, 0].long()
    offset = 0.5 if aligned else 0.0
    centre_w = rois[:, 1] * spatial_scale - offset
    centre_h = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale
    roi_h = rois[:, 4] * spatial_scale
    theta = -rois[:, 5] if clockwise else rois[:, 5]
    if not aligned:  # mmcv keeps this for backward compatibility only
        roi_w = roi_w.clamp(min=1.0)
        roi_h = roi_h.clamp(min=1.0)
    cos_t, sin_t = torch.cos(theta), torch.sin(theta)
    bin_h = roi_h / pooled_h
    bin_w = roi_w / pooled_w
    if sampling_ratio > 0:
        grid_h = torch.full((num,), sampling_ratio, dtype=torch.long, device=rois.device)
        grid_w = grid_h.clone()
    else:
        # A negative size gives an empty grid (mmcv's loops do not run): the bin stays 0.
        grid_h = torch.ceil(roi_h / pooled_h).long().clamp(min=0)
        grid_w = torch.ceil(roi_w / pooled_w).long().clamp(min=0)
    start_h = -roi_h / 2.0
    start_w = -roi_w / 2.0
    count = (grid_h * grid_w).clamp(min=1).to(dtype)

    # (R, ph, pw) views of the per-RoI values.
    ph = torch.arange(pooled_h, dtype=dtype, device=rois.device).view(1, -1, 1)
    pw = torch.arange(pooled_w, dtype=dtype, device=rois.device).view(1, 1, -1)
    base_h = start_h.view(-1, 1, 1) + ph * bin_h.view(-1, 1, 1)
    base_w = start_w.view(-1, 1, 1) + pw * bin_w.view(-1, 1, 1)
    cos3, sin3 = cos_t.view(-1, 1, 1), sin_t.view(-1, 1, 1)
    ch3, cw3 = centre_h.view(-1, 1, 1), centre_w.view(-1, 1, 1)
    # One row of channels per pixel of every image: samples are rows of this table.
    table = features.permute(0, 2, 3, 1).reshape(-1, channels)
    first_row = (batch * (height * width)).view(-1, 1, 1)
    gh_max, gw_max = int(grid_h.max()), int(grid_w.max())
    bin_h3, bin_w3 = bin_h.view(-1, 1, 1), bin_w.view(-1, 1, 1)
    grid_h3 = grid_h.clamp(min=1).to(dtype).view(-1, 1, 1)
    grid_w3 = grid_w.clamp(min=1).to(dtype).view(-1, 1, 1)
    for iy in range(gh_max):
        yy = base_h + (iy + 0.5) * bin_h3 / grid_h3
        for ix in range(gw_max):
            xx = base_w + (ix + 0.5) * bin_w3 / grid_w3
            y = yy * cos3 - xx * sin3 + ch3
            x = yy * sin3 + xx * cos3 + cw3
            active = (iy < grid_h).view(-1, 1, 1) & (ix < grid_w).view(-1, 1, 1)
            inside = ~((y < -1.0) | (y > height) | (x < -1.0) | (x > width)) & active
            out = out + _bilinear(table, first_row, y, x, (height, width), inside)
    return out / count.view(-1, 1, 1, 1)


def _bilinear(
    table: Tensor, first_row: Tensor, y: Tensor, x: Tensor, size: tuple[int, int], keep: Tensor
) -> Tensor:
    """mmcv's clamped bilinear sample at (y, x) (R x ph x pw) of the image starting at row
    ``first_row`` of ``table`` (pixels x C) -> R x C x ph x pw; 0 where not ``keep``."""
    height, width = size
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y_low = y.long()
    x_low = x.long()
    y_top = y_low >= height - 1
    x_top = x_low >= width - 1
    y_low = torch.where(y_top, height - 1, y_low)
    x_low = torch.where(x_top, width - 1, x_low)
    y = torch.where(y_top, y_low.to(y.dtype), y)
    x = torch.where(x_top, x_low.to(x.dtype), x)
    y_high = torch.where(y_top, y_low, y_low + 1)
    x_high = torch.where(x_top, x_low, x_low + 1)
    ly = y - y_low
    lx = x - x_low
    hy = 1.0 - ly
    hx = 1.0 - lx
    zero = torch.zeros((), dtype=y.dtype, device=y.device)

    def term(weight: Tensor, yi: Tensor, xi: Tensor) -> Tensor:
        rows = torch.where(keep, first_row + yi * width + xi, 0)
        values = table[rows.reshape(-1)].reshape(*rows.shape, -1).permute(0, 3, 1, 2)
        return torch.where(keep, weight, zero).unsqueeze(1) * values

    return (
        term(hy * hx, y_low, x_low)
        + term(hy * lx, y_low, x_high)
        + term(ly * hx, y_high, x_low)
        + term(ly * lx, y_high, x_high)
    )
