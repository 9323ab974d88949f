"""`std_sort` gives libstdc++'s ``std::sort`` order, ties included (lanms sorts with it)."""

from __future__ import annotations

import random

from ocrserve.mmocr.models.std_sort import std_sort

#: Scores with many ties, and the index order GCC 12's ``std::sort`` gave for them with
#: ``[&](i, j) { return s[i] > s[j]; }`` (over 16 elements: the introsort path, not only the
#: final insertion sort). A stable sort would give 2, 11, 12, 16, 21, ... instead.
SCORES = [
    2, 1, 3, 0, 0, 0, 2, 0, 1, 0, 0, 3, 3, 0, 1, 0, 3, 0, 0, 1,
    0, 3, 0, 1, 0, 1, 2, 3, 1, 0, 2, 1, 0, 1, 2, 0, 0, 0, 1, 3,
]  # fmt: skip
GCC_ORDER = [
    21, 2, 39, 16, 27, 12, 11, 30, 26, 6, 34, 0, 1, 28, 31, 33, 25, 38, 23, 14,
    19, 8, 29, 3, 4, 37, 36, 35, 5, 7, 32, 9, 10, 13, 15, 24, 17, 22, 18, 20,
]  # fmt: skip


def test_ties_come_out_in_gccs_order() -> None:
    order = std_sort(list(range(len(SCORES))), lambda i, j: SCORES[i] > SCORES[j])
    assert order == GCC_ORDER


def test_it_sorts() -> None:
    rng = random.Random(0)
    for n in (0, 1, 2, 16, 17, 100, 1000):
        values = [rng.randint(0, 5) for _ in range(n)]
        assert std_sort(values, lambda a, b: a < b) == sorted(values)
