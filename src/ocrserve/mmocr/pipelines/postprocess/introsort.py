"""numpy 1.x's default ``argsort`` order for float64, ties included.

MMOCR 0.6.3 ran on numpy 1.23, whose ``argsort(kind="quicksort")`` is an introsort: median of
three pivots, insertion sort below 17 elements, heapsort past a depth of ``2 * floor(log2 n)``.
It is not stable, so the order of equal keys is whatever that algorithm leaves; MMOCR code that
walks the order (TextSnake's ``merge_disks``) depends on it. numpy 2 sorts with other kernels
(SIMD ones on AVX-512 machines) and leaves ties in another order. `legacy_argsort` walks the same
steps as numpy 1.23's ``aquicksort`` (``npysort/quicksort.cpp``), on a Python list.
"""

from __future__ import annotations

import numpy as np

__all__ = ["legacy_argsort"]

_SMALL = 15  # numpy's SMALL_QUICKSORT: partitions this short (pr - pl) are insertion-sorted


def _less(a: float, b: float) -> bool:
    """numpy's float ordering: NaN after everything."""
    return a < b or (b != b and a == a)


def _heapsort(v: list[float], idx: list[int], lo: int, n: int) -> None:
    """numpy's ``aheapsort`` on ``idx[lo:lo + n]`` (1-based heap over an offset view)."""
    base = lo - 1

    def sift(i: int, j: int, tmp: int, size: int) -> None:
        while j <= size:
            if j < size and _less(v[idx[base + j]], v[idx[base + j + 1]]):
                j += 1
            if _less(v[tmp], v[idx[base + j]]):
                idx[base + i] = idx[base + j]
                i = j
                j += j
            else:
                break
        idx[base + i] = tmp

    for node in range(n >> 1, 0, -1):
        sift(node, node << 1, idx[base + node], n)
    while n > 1:
        tmp = idx[base + n]
        idx[base + n] = idx[base + 1]
        n -= 1
        sift(1, 2, tmp, n)


def legacy_argsort(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values)`` (1-D float64) as numpy 1.23 ordered it, as int64 indexes."""
    v = [float(x) for x in np.asarray(values, dtype=np.float64).ravel()]
    n = len(v)
    idx = list(range(n))
    if n < 2:
        return np.asarray(idx, dtype=np.int64)
    stack: list[tuple[int, int, int]] = []
    pl, pr = 0, n - 1
    depth = (n.bit_length() - 1) * 2
    while True:
        if depth < 0:
            _heapsort(v, idx, pl, pr - pl + 1)
        else:
            while pr - pl > _SMALL:
                pm = pl + ((pr - pl) >> 1)
                if _less(v[idx[pm]], v[idx[pl]]):
                    idx[pm], idx[pl] = idx[pl], idx[pm]
                if _less(v[idx[pr]], v[idx[pm]]):
                    idx[pr], idx[pm] = idx[pm], idx[pr]
                if _less(v[idx[pm]], v[idx[pl]]):
                    idx[pm], idx[pl] = idx[pl], idx[pm]
                pivot = v[idx[pm]]
                pi, pj = pl, pr - 1
                idx[pm], idx[pj] = idx[pj], idx[pm]
                while True:
                    pi += 1
                    while _less(v[idx[pi]], pivot):
                        pi += 1
                    pj -= 1
                    while _less(pivot, v[idx[pj]]):
                        pj -= 1
                    if pi >= pj:
                        break
                    idx[pi], idx[pj] = idx[pj], idx[pi]
                idx[pi], idx[pr - 1] = idx[pr - 1], idx[pi]
                depth -= 1
                # The larger side waits on the stack; the smaller one is sorted next.
                if pi - pl < pr - pi:
                    stack.append((pi + 1, pr, depth))
                    pr = pi - 1
                else:
                    stack.append((pl, pi - 1, depth))
                    pl = pi + 1
            for i in range(pl + 1, pr + 1):
                item = idx[i]
                key = v[item]
                j = i
                while j > pl and _less(key, v[idx[j - 1]]):
                    idx[j] = idx[j - 1]
                    j -= 1
                idx[j] = item
        if not stack:
            break
        pl, pr, depth = stack.pop()
    return np.asarray(idx, dtype=np.int64)
