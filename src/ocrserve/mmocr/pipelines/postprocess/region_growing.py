"""Connected-component growing for PSENet and PANet, equal to mmcv 1.x's C++ ops, in numpy.

Both ops grow labelled seeds with a first-in-first-out breadth-first search over 4-neighbours.
Here the search runs one BFS level at a time on whole arrays: the candidates of a level are
listed in queue order (parent order, then the op's neighbour order), the ones that pass are kept
at their first occurrence, and they form the next level in that order; this gives every pixel
the label that the sequential queue gives it, ties included.

- `contour_expand` (mmcv ``contour_expand``, PSENet): mmcv means to expand kernel by kernel, but
  its per-kernel offsets are never set (the lambda that should fill ``kernel_step`` changes a
  copy), so every step reads the first (largest) kernel map; the first step then floods the whole
  of it and the later ones change nothing. That is what MMOCR 0.6.3 returns, so that is what
  this does: one flood of the first map from all seed pixels (raster order; neighbours up,
  down, left, right). Seeds of components smaller than ``min_kernel_area`` are dropped.
- `pixel_group` (mmcv ``pixel_group``, PANet): seeds are the kernel-contour pixels; a text pixel
  joins a kernel when the squared distance of its similarity vector to the kernel's mean vector
  is under ``distance_threshold ** 2``, summed in mmcv's float/double mix (neighbours left,
  right, up, down). Returns per label ``[mean score, pixel count, x0, y0, x1, y1, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["contour_expand", "pixel_group"]


def _bfs_levels(
    labels: np.ndarray,
    allowed: np.ndarray,
    seeds: np.ndarray,
    steps: tuple[int, ...],
    accept: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> None:
    """Grow ``labels`` (flat, padded by one pixel of ``allowed == False``) from ``seeds``.

    ``steps`` are flat neighbour offsets in the op's order; ``accept(candidates, seed_labels)``,
    when given, filters candidates further (a boolean array).
    """
    offsets = np.asarray(steps, dtype=np.int64)
    free = allowed & (labels == 0)
    claim = np.empty(labels.size, dtype=np.int64)
    frontier = seeds
    while frontier.size:
        cand = (frontier[:, None] + offsets[None, :]).ravel()
        ok = free[cand]
        cand = cand[ok]
        lab = np.repeat(labels[frontier], len(steps))[ok]
        if accept is not None and cand.size:
            keep = accept(cand, lab)
            cand, lab = cand[keep], lab[keep]
        if not cand.size:
            break
        # First occurrence in queue order: write positions backwards, so the earliest one stays.
        order = np.arange(cand.size)
        claim[cand[::-1]] = order[::-1]
        first = claim[cand] == order
        frontier = cand[first]
        labels[frontier] = lab[first]
        free[frontier] = False


def _padded(a: np.ndarray, value: int | bool = 0) -> np.ndarray:
    return np.pad(a, 1, mode="constant", constant_values=value)


def contour_expand(
    kernel_masks: np.ndarray, kernel_labels: np.ndarray, min_kernel_area: int = 0
) -> np.ndarray:
    """PSENet's expansion: ``kernel_masks`` ``K x H x W`` (uint8), seed labels ``H x W``."""
    if kernel_masks.ndim != 3 or kernel_masks.shape[1:] != kernel_labels.shape:
        raise ValueError("contour_expand: kernel_masks must be K x H x W matching the labels")
    h, w = kernel_labels.shape
    labels = kernel_labels.astype(np.int32)
    if min_kernel_area > 0:
        area = np.bincount(labels.ravel())
        small = area < min_kernel_area
        small[0] = False
        labels = np.where(small[labels], 0, labels)
    if kernel_masks.shape[0] < 2:
        return labels
    wp = w + 2
    flat = _padded(labels).ravel()
    allowed = _padded(kernel_masks[0] != 0, False).ravel()
    seeds = np.flatnonzero(flat)
    _bfs_levels(flat, allowed, seeds, (-wp, wp, -1, 1))
    return flat.reshape(h + 2, wp)[1:-1, 1:-1]


def pixel_group(
    score: np.ndarray,
    mask: np.ndarray,
    embedding: np.ndarray,
    kernel_label: np.ndarray,
    kernel_contour: np.ndarray,
    kernel_region_num: int,
    distance_threshold: float,
) -> list[list[float]]:
    """PANet's pixel aggregation; ``embedding`` is ``H x W x D`` as the op reads it."""
    h, w = score.shape
    d = embedding.shape[2]
    emb = embedding.reshape(h * w, d).astype(np.float32)
    labels = kernel_label.astype(np.int32)
    flat_labels = labels.ravel()

    # Kernel mean vectors: float sums in raster order, as the op accumulates them.
    order = np.argsort(flat_labels, kind="stable")
    sorted_labels = flat_labels[order]
    bounds = np.searchsorted(sorted_labels, np.arange(kernel_region_num + 1))
    means = np.zeros((max(kernel_region_num, 1), d), dtype=np.float32)
    for lab in range(1, kernel_region_num):
        idx = order[bounds[lab] : bounds[lab + 1]]
        if idx.size:
            sums = np.add.accumulate(emb[idx], axis=0, dtype=np.float32)[-1]
            means[lab] = sums / np.float32(idx.size)
    threshold = np.float32(np.float32(distance_threshold) * np.float32(distance_threshold))

    wp = w + 2
    pad_index = _padded(np.arange(h * w).reshape(h, w), -1).ravel()
    flat = _padded(labels).ravel()
    allowed = _padded(mask.astype(bool), False).ravel()
    seeds = np.flatnonzero(_padded((kernel_contour != 0) & (labels > 0), False).ravel())

    def near(cand: np.ndarray, lab: np.ndarray) -> np.ndarray:
        diff = (means[lab] - emb[pad_index[cand]]).astype(np.float64)
        dis = np.zeros(cand.size, dtype=np.float32)
        for i in range(d):  # float += double, rounded to float each step
            dis = (dis.astype(np.float64) + diff[:, i] * diff[:, i]).astype(np.float32)
        return dis < threshold

    _bfs_levels(flat, allowed, seeds, (-1, 1, -wp, wp), near)
    grown = flat.reshape(h + 2, wp)[1:-1, 1:-1].ravel()

    result: list[list[float]] = [[0.0, 0.0] for _ in range(kernel_region_num)]
    scores = score.astype(np.float32).ravel()
    order = np.argsort(grown, kind="stable")
    sorted_labels = grown[order]
    bounds = np.searchsorted(sorted_labels, np.arange(kernel_region_num + 1))
    for lab in range(1, kernel_region_num):
        idx = order[bounds[lab] : bounds[lab + 1]]
        if not idx.size:
            continue
        total = np.add.accumulate(scores[idx], dtype=np.float32)[-1]
        count = np.float32(idx.size)
        points = np.empty(2 * idx.size, dtype=np.float64)
        points[0::2] = idx % w
        points[1::2] = idx // w
        result[lab] = [float(total / count), float(count), *points.tolist()]
    return result
