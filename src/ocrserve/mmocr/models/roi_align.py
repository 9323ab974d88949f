"""mmcv 1.x's ``RoIAlign`` (``aligned=True``, average pooling), as its CPU kernel computes it.

Per RoI ``(batch index, x1, y1, x2, y2)`` in image pixels: the box is scaled by
``spatial_scale`` and shifted by -0.5 (``aligned``), cut into ``output_size`` bins, and each bin
averages ``grid_h x grid_w`` bilinear samples (``sampling_ratio``, or ``ceil(bin size)`` when it
is 0). Samples more than one pixel outside the map count as 0; samples at the border are clamped
to it (mmcv's ``pre_calc_for_bilinear_interpolate``).

The float32 operations and the summation order are mmcv's (sample weights ``hy * hx`` etc., the
four products summed left to right, then the samples of a bin row by row), so equal inputs give
bit-equal outputs. RoIs are grouped by their sampling grid and gathered in bounded chunks.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["roi_align"]

#: Upper bound on gathered feature values per chunk (memory, not results).
_CHUNK_ELEMENTS = 1 << 23


def roi_align(
    features: Tensor,
    rois: Tensor,
    output_size: int | tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int = 0,
) -> Tensor:
    """``R x 5`` RoIs over ``N x C x H x W`` features -> ``R x C x out_h x out_w``."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    n_rois = rois.shape[0]
    channels, height, width = features.shape[1:]
    output = features.new_zeros((n_rois, channels, out_h, out_w))
    if n_rois == 0:
        return output
    rois = rois.to(torch.float32)
    scale = float(spatial_scale)
    start_w = rois[:, 1] * scale - 0.5
    start_h = rois[:, 2] * scale - 0.5
    roi_w = (rois[:, 3] * scale - 0.5) - start_w
    roi_h = (rois[:, 4] * scale - 0.5) - start_h
    if bool((roi_w < 0).any() or (roi_h < 0).any()):
        raise ValueError("ROIs in ROIAlign cannot have non-negative size!")
    bin_h = roi_h / out_h
    bin_w = roi_w / out_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(bin_h, sampling_ratio, dtype=torch.long)
        grid_w = torch.full_like(bin_w, sampling_ratio, dtype=torch.long)
    else:
        grid_h, grid_w = torch.ceil(bin_h).long(), torch.ceil(bin_w).long()
    batch = rois[:, 0].long()
    keys = torch.stack([batch, grid_h, grid_w], dim=1)
    for key in torch.unique(keys, dim=0).tolist():
        b, gh, gw = (int(k) for k in key)
        inds = ((keys[:, 0] == b) & (keys[:, 1] == gh) & (keys[:, 2] == gw)).nonzero().view(-1)
        if gh == 0 or gw == 0:
            continue  # an empty grid averages nothing: mmcv writes 0 / 1
        per_roi = channels * out_h * gh * out_w * gw
        step = max(1, _CHUNK_ELEMENTS // max(1, per_roi))
        flat = features[b].reshape(channels, height * width)
        for at in range(0, inds.numel(), step):
            sel = inds[at : at + step]
            output[sel] = _pool(
                flat,
                height,
                width,
                (start_h[sel], start_w[sel], bin_h[sel], bin_w[sel]),
                (out_h, out_w, gh, gw),
            )
    return output


def _axis(
    start: Tensor, bin_size: Tensor, pooled: int, grid: int, size: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Sample coordinates along one axis, ``R x pooled x grid``: (outside, low, high, l, h)."""
    bins = torch.arange(pooled, dtype=torch.float32, device=start.device)
    offsets = torch.arange(grid, dtype=torch.float32, device=start.device) + 0.5
    corner = start[:, None] + bins[None, :] * bin_size[:, None]
    inner = (offsets[None, :] * bin_size[:, None]) / float(grid)
    coord = corner[:, :, None] + inner[:, None, :]
    outside = (coord < -1.0) | (coord > size)
    coord = torch.where(coord <= 0, torch.zeros_like(coord), coord)
    low = coord.long()
    at_end = low >= size - 1
    low = torch.where(at_end, torch.full_like(low, size - 1), low)
    high = torch.where(at_end, low, low + 1)
    coord = torch.where(at_end, low.to(torch.float32), coord)
    frac = coord - low.to(torch.float32)
    return outside, low, high, frac, 1.0 - frac


def _pool(
    flat: Tensor,
    height: int,
    width: int,
    boxes: tuple[Tensor, Tensor, Tensor, Tensor],
    sizes: tuple[int, int, int, int],
) -> Tensor:
    """Average-pool one group of RoIs sharing a grid: ``R x C x out_h x out_w``."""
    start_h, start_w, bin_h, bin_w = boxes
    out_h, out_w, gh, gw = sizes
    out_y, y_low, y_high, ly, hy = _axis(start_h, bin_h, out_h, gh, height)
    out_x, x_low, x_high, lx, hx = _axis(start_w, bin_w, out_w, gw, width)
    # R x out_h x gh x out_w x gw, as mmcv's pre_calc (zero weights and index 0 outside).
    outside = out_y[:, :, :, None, None] | out_x[:, None, None, :, :]

    def weight(a: Tensor, b: Tensor) -> Tensor:
        w = a[:, :, :, None, None] * b[:, None, None, :, :]
        return torch.where(outside, torch.zeros_like(w), w)

    def index(ys: Tensor, xs: Tensor) -> Tensor:
        pos = ys[:, :, :, None, None] * width + xs[:, None, None, :, :]
        return torch.where(outside, torch.zeros_like(pos), pos)

    terms = (
        (weight(hy, hx), index(y_low, x_low)),
        (weight(hy, lx), index(y_low, x_high)),
        (weight(ly, hx), index(y_high, x_low)),
        (weight(ly, lx), index(y_high, x_high)),
    )
    val: Tensor | None = None
    for w, pos in terms:
        gathered = flat.index_select(1, pos.reshape(-1)).view(-1, *pos.shape)
        product = w[None] * gathered
        val = product if val is None else val + product
    assert val is not None
    # C x R x out_h x gh x out_w x gw: sum the samples of each bin in mmcv's order.
    total = torch.zeros_like(val[:, :, :, 0, :, 0])
    for iy in range(gh):
        for ix in range(gw):
            total = total + val[:, :, :, iy, :, ix]
    count = float(max(gh * gw, 1))
    return (total / count).permute(1, 0, 2, 3)
