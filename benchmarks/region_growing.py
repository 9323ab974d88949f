#!/usr/bin/env python3
"""Speed of PSENet's and PANet's connected-component growing on a 1280x720 map.

ocrserve grows components with whole-array BFS levels in numpy
(`ocrserve.mmocr.pipelines.postprocess.region_growing`), where mmcv used C++ loops. mmcv cannot be
installed next to current PyTorch, so the baseline run in the same process is the plain
first-in-first-out queue in Python that mirrors mmcv's C++ loop for loop (also a check: both
must give the same labels); ``cv2.connectedComponents`` on the same map is printed as a
compiled-code yardstick. Prints a markdown table: median and p90 milliseconds.

Usage (from the repository root): python benchmarks/region_growing.py [--repeat 20]
"""

from __future__ import annotations

import argparse
from collections import deque

import cv2
import numpy as np
from harness import timed

from ocrserve.mmocr.pipelines.postprocess.region_growing import contour_expand, pixel_group

H, W = 720, 1280


def synthetic_maps(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Text blobs (rotated ellipses), their shrunk kernels and 4-d similarity vectors."""
    rng = np.random.default_rng(seed)
    text = np.zeros((H, W), np.uint8)
    kernel = np.zeros((H, W), np.uint8)
    for _ in range(120):
        cx, cy = int(rng.integers(0, W)), int(rng.integers(0, H))
        ax, ay = int(rng.integers(20, 160)), int(rng.integers(6, 30))
        angle = float(rng.uniform(-30, 30))
        cv2.ellipse(text, (cx, cy), (ax, ay), angle, 0, 360, 1, -1)
        cv2.ellipse(kernel, (cx, cy), (ax // 2, max(1, ay // 3)), angle, 0, 360, 1, -1)
    kernel &= text
    emb = rng.normal(0, 0.3, (H, W, 4)).astype(np.float32)
    return text, kernel, emb


def queue_contour_expand(masks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    out = labels.copy()
    queue = deque(zip(*np.nonzero(out)))
    while queue:
        y, x = queue.popleft()
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            ny, nx = y + dy, x + dx
            if 0 <= ny < H and 0 <= nx < W and masks[0, ny, nx] and out[ny, nx] == 0:
                out[ny, nx] = out[y, x]
                queue.append((ny, nx))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    text, kernel, emb = synthetic_maps()
    masks = np.stack([text, kernel])
    num, seeds = cv2.connectedComponents(kernel, connectivity=4)
    contours, _ = cv2.findContours(kernel * 255, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    contour_map = np.zeros_like(kernel)
    cv2.drawContours(contour_map, contours, -1, 255)
    score = np.full((H, W), 0.9, np.float32)

    assert np.array_equal(contour_expand(masks, seeds), queue_contour_expand(masks, seeds))
    rows = [
        ("PSE contour_expand (numpy BFS levels)", lambda: contour_expand(masks, seeds)),
        (
            "PAN pixel_group (numpy BFS levels)",
            lambda: pixel_group(score, text.astype(bool), emb, seeds, contour_map, num, 0.85),
        ),
        ("cv2.connectedComponents (C++ yardstick)", lambda: cv2.connectedComponents(kernel)),
    ]
    base_median, base_p90 = timed(
        lambda: queue_contour_expand(masks, seeds), max(1, args.repeat // 10)
    )
    print(f"1280x720 map, {num - 1} kernels, {int(text.sum())} text pixels\n")
    print("| step | median ms | p90 ms | vs Python queue |")
    print("|---|---:|---:|---:|")
    baseline = "PSE contour_expand, Python queue (baseline)"
    print(f"| {baseline} | {base_median:.1f} | {base_p90:.1f} | 1.00 |")
    for name, fn in rows:
        median, p90 = timed(fn, args.repeat)
        print(f"| {name} | {median:.1f} | {p90:.1f} | {median / base_median:.3f} |")


if __name__ == "__main__":
    main()
