"""libstdc++'s ``std::sort`` order, ties included, for C++ code whose result depends on it.

``std::sort`` is not stable: where the comparator calls two elements equal, their final order is
whatever GCC's introsort leaves. lanms (C++, built with GCC) sorts its polygons by score with it
before NMS, and which of two equal-score overlapping polygons survives depends on that order.
`std_sort` walks libstdc++'s steps (``bits/stl_algo.h``, ``bits/stl_heap.h``): introsort with a
depth limit of ``2 * floor(log2 n)``, median of three moved to the front, unguarded partition,
partitions of 16 or fewer left to a final insertion sort, heapsort past the depth limit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

__all__ = ["std_sort"]

T = TypeVar("T")
_THRESHOLD = 16  # libstdc++'s _S_threshold


def std_sort(items: list[T], less: Callable[[T, T], bool]) -> list[T]:
    """A sorted copy of ``items`` in the order ``std::sort(begin, end, less)`` gives."""
    v = list(items)
    if len(v) > 1:
        _introsort_loop(v, 0, len(v), 2 * (len(v).bit_length() - 1), less)
        _final_insertion_sort(v, 0, len(v), less)
    return v


def _introsort_loop(v: list[T], first: int, last: int, depth: int, less: Callable) -> None:
    while last - first > _THRESHOLD:
        if depth == 0:
            _heap_sort(v, first, last, less)
            return
        depth -= 1
        cut = _partition_pivot(v, first, last, less)
        _introsort_loop(v, cut, last, depth, less)
        last = cut


def _partition_pivot(v: list[T], first: int, last: int, less: Callable) -> int:
    mid = first + (last - first) // 2
    a, b, c = first + 1, mid, last - 1
    if less(v[a], v[b]):
        if less(v[b], v[c]):
            pick = b
        elif less(v[a], v[c]):
            pick = c
        else:
            pick = a
    elif less(v[a], v[c]):
        pick = a
    elif less(v[b], v[c]):
        pick = c
    else:
        pick = b
    v[first], v[pick] = v[pick], v[first]
    # Unguarded partition of [first + 1, last) around v[first].
    lo, hi = first + 1, last
    pivot = v[first]
    while True:
        while less(v[lo], pivot):
            lo += 1
        hi -= 1
        while less(pivot, v[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        v[lo], v[hi] = v[hi], v[lo]
        lo += 1


def _linear_insert(v: list[T], last: int, less: Callable) -> None:
    value = v[last]
    prev = last - 1
    while less(value, v[prev]):
        v[last] = v[prev]
        last = prev
        prev -= 1
    v[last] = value


def _insertion_sort(v: list[T], first: int, last: int, less: Callable) -> None:
    for i in range(first + 1, last):
        if less(v[i], v[first]):
            value = v[i]
            v[first + 1 : i + 1] = v[first:i]
            v[first] = value
        else:
            _linear_insert(v, i, less)


def _final_insertion_sort(v: list[T], first: int, last: int, less: Callable) -> None:
    if last - first > _THRESHOLD:
        _insertion_sort(v, first, first + _THRESHOLD, less)
        for i in range(first + _THRESHOLD, last):
            _linear_insert(v, i, less)
    else:
        _insertion_sort(v, first, last, less)


def _adjust_heap(v: list[T], first: int, hole: int, size: int, value: T, less: Callable) -> None:
    top = hole
    child = hole
    while child < (size - 1) // 2:
        child = 2 * (child + 1)
        if less(v[first + child], v[first + child - 1]):
            child -= 1
        v[first + hole] = v[first + child]
        hole = child
    if size % 2 == 0 and child == (size - 2) // 2:
        child = 2 * (child + 1)
        v[first + hole] = v[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and less(v[first + parent], value):
        v[first + hole] = v[first + parent]
        hole = parent
        parent = (hole - 1) // 2
    v[first + hole] = value


def _heap_sort(v: list[T], first: int, last: int, less: Callable) -> None:
    """libstdc++'s ``__partial_sort(first, last, last)``: make_heap, then sort_heap."""
    size = last - first
    if size >= 2:
        for parent in range((size - 2) // 2, -1, -1):
            _adjust_heap(v, first, parent, size, v[first + parent], less)
    while last - first > 1:
        last -= 1
        value = v[last]
        v[last] = v[first]
        _adjust_heap(v, first, 0, last - first, value, less)
