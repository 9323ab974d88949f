#!/usr/bin/env python3
"""Speed of TextSnake's post-processing (`TextSnakePostprocessor`) on 1280x736 maps.

Two maps: 24 synthetic text lines (what a trained model gives: few regions, long skeletons) and
smoothed noise (what the random-weight parity fixture gives: tens of thousands of fragments).
The baseline, run in the same process, is the synthetic map decoded with MMOCR's
``merge_disks`` loop (one disk against all remaining ones per round, O(n^2) numpy calls) in
place of ocrserve's, which finds the close pairs once; both must give the same boundaries.
Prints a markdown table: median and p90 milliseconds.

Usage (from the repository root): python benchmarks/textsnake_postprocess.py [--repeat 10]
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
from harness import timed

from ocrserve.mmocr.pipelines.postprocess import textsnake
from ocrserve.mmocr.pipelines.postprocess.introsort import legacy_argsort

H, W = 736, 1312  # 1280x720 after MMOCR's resize to 736 and padding to 32


def text_lines(count: int = 24) -> np.ndarray:
    """Horizontal text lines: TR/TCL logits, sin 0, cos 1, radius 10."""
    rng = np.random.default_rng(0)
    preds = np.full((5, H, W), -6.0, np.float32)
    preds[2], preds[3], preds[4] = 0.0, 1.0, 0.0
    for i in range(count):
        y, x0, x1 = 20 + 29 * i, int(rng.integers(10, 300)), int(rng.integers(700, 1290))
        preds[0, y - 10 : y + 11, x0 : x1 + 1] = 6.0
        preds[1, y - 3 : y + 4, x0 + 5 : x1 - 4] = 6.0
        preds[4, y - 10 : y + 11, x0 : x1 + 1] = 10.0
    return preds


def noise() -> np.ndarray:
    rng = np.random.default_rng(1)
    preds = rng.normal(0, 8, (5, H, W)).astype(np.float32)
    for channel in preds:
        channel[...] = cv2.GaussianBlur(channel, (0, 0), 2.0) * 3
    return preds


def looping_merge_disks(disks: np.ndarray, thr: float) -> np.ndarray:
    """MMOCR 0.6.3's merge_disks loop."""
    order = legacy_argsort(disks[:, 3])[::-1]
    merged = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        dist = np.linalg.norm(disks[i, :2] - disks[rest, :2], axis=1)
        limit = (disks[i, 2] + disks[rest, 2]) * thr
        close = rest[dist <= limit]
        merged.append(np.mean(disks[np.hstack([i, close])], axis=0) if close.size else disks[i])
        order = rest[dist > limit]
    return np.vstack(merged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    post = textsnake.TextSnakePostprocessor()
    lines, fragments = text_lines(), noise()

    fast = textsnake.merge_disks
    expected = post(lines)
    textsnake.merge_disks = looping_merge_disks  # type: ignore[assignment]
    try:
        assert post(lines) == expected
        base_median, base_p90 = timed(lambda: post(lines), max(1, args.repeat // 3))
    finally:
        textsnake.merge_disks = fast
    rows = [
        (f"24 text lines ({len(expected)} boundaries)", lambda: post(lines)),
        (f"smoothed noise ({len(post(fragments))} boundaries)", lambda: post(fragments)),
    ]
    print(f"{W}x{H} maps, TextSnakePostprocessor defaults\n")
    print("| map | median ms | p90 ms | vs MMOCR's merge loop |")
    print("|---|---:|---:|---:|")
    print(f"| 24 text lines, MMOCR's merge_disks loop (baseline) | {base_median:.0f} | "
          f"{base_p90:.0f} | 1.00 |")  # fmt: skip
    for name, fn in rows:
        median, p90 = timed(fn, args.repeat)
        print(f"| {name} | {median:.0f} | {p90:.0f} | {median / base_median:.2f} |")


if __name__ == "__main__":
    main()
