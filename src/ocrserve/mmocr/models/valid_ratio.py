"""Masks from ``valid_ratio``: how much of a padded recognizer input is image.

MMOCR's attention recognizers read ``valid_ratio`` (resized width / padded width) from each
image's metas and mask the feature columns past ``min(W, ceil(W * valid_ratio))``. These helpers
compute that with tensor operations in float64, which gives exactly what MMOCR's Python
``math.ceil`` gives, and lets an ONNX export trace the masks from an input instead of freezing
them as constants. A meta's ``valid_ratio`` is a number (one image) or a 1-D tensor (that many
consecutive images: the ONNX export passes the whole batch's ratios this way, so that the batch
size stays dynamic); one ratio for a whole batch broadcasts.

`with_valid_ratio` and `valid_ratio_of` serve ONNX archives too, so torch is imported only by
the tensor helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "column_is_valid",
    "valid_ratio_of",
    "valid_ratios",
    "valid_widths",
    "with_valid_ratio",
]


def with_valid_ratio(meta: Mapping[str, Any], input_width: int) -> dict[str, Any]:
    """The metas a recognizer sees: MMOCR's simple_test sets ``valid_ratio`` to the resized
    width over the (padded) input width."""
    meta = dict(meta)
    if "resize_shape" in meta:
        meta["valid_ratio"] = 1.0 * meta["resize_shape"][1] / input_width
    return meta


def valid_ratio_of(meta: Mapping[str, Any], input_width: int) -> float:
    """The ``valid_ratio`` the network reads from `with_valid_ratio`'s metas (1.0 if none)."""
    return float(with_valid_ratio(meta, input_width).get("valid_ratio", 1.0))


def valid_ratios(
    img_metas: Sequence[Mapping[str, Any]] | None, mask: bool = True, *, like: Tensor
) -> Tensor | None:
    """The metas' ``valid_ratio`` (1.0 where absent) as float64 on ``like``'s device, or None
    when there are no metas or masking is off."""
    if not img_metas or not mask:
        return None
    import torch

    parts = [_as_float64(meta.get("valid_ratio", 1.0), like) for meta in img_metas]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


def _as_float64(value: Any, like: Tensor) -> Tensor:
    import torch

    # (not torch.as_tensor: a traced input would become constant)
    if isinstance(value, torch.Tensor):
        return value.to(device=like.device, dtype=torch.float64).reshape(-1)
    return torch.tensor([float(value)], dtype=torch.float64, device=like.device)


def valid_widths(width: int, ratios: Tensor) -> Tensor:
    """``min(width, ceil(width * ratio))`` per image, int64 (``width`` may be a traced size)."""
    return (ratios.clamp(max=1.0) * width).ceil().long()


def column_is_valid(width: int, ratios: Tensor) -> Tensor:
    """``N x width`` booleans (``1 x width`` for one ratio): True at the columns that hold the
    image."""
    import torch

    columns = torch.arange(width, device=ratios.device)
    return columns.view(1, -1) < valid_widths(width, ratios).view(-1, 1)
