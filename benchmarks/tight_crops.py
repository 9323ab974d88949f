#!/usr/bin/env python3
"""Text that touches the image's edge: tight crops through the bundled ``ocr`` model, with and
without the detector's border (issue 38, point 4; `ocrserve.ppocr.det.DBSettings.pad_ratio`).

The crop set: every text line of a text set (``--data``, textset-public by default: choose
settings there, never on textset-val) cut to its ground-truth rectangle with a margin of 0, 1
or 2 pixels (in turn), and the demo page's 6 lines at each margin; ``--every N`` keeps every
N-th crop. A crop is *found* when the detector gives it at least one box, *right* when the
texts read, joined, equal the ground truth with spaces removed. Both variants run in one
process on the same crops, the shipped border first, then none (``pad_ratio`` 0), alternating
over ``--rounds``; the counts must agree between rounds (the model is deterministic).

  python benchmarks/tight_crops.py [--data ../shared/data/textset-public] [--every 4]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from harness import REPO, md_table, write_result

from ocrserve.ppocr import build_builtin

DEFAULT_DATA = REPO.parent / "shared" / "data" / "textset-public"


def crop(img: np.ndarray, points: Any, margin: int) -> np.ndarray:
    """The axis-aligned rectangle around ``points``, ``margin`` pixels wider on each side."""
    pts = np.asarray(points, float)
    h, w = img.shape[:2]
    x0 = max(0, int(np.floor(pts[:, 0].min())) - margin)
    y0 = max(0, int(np.floor(pts[:, 1].min())) - margin)
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + margin)
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + margin)
    return np.ascontiguousarray(img[y0:y1, x0:x1])


def crop_set(data: Path, every: int) -> list[tuple[str, np.ndarray, str]]:
    """``(name, crop, text)`` for the demo's lines and the text set's lines."""
    demo = REPO / "demo"
    out = []
    page = cv2.imread(str(demo / "demo_text_det.jpg"))
    for i, line in enumerate(json.loads((demo / "demo_text_det.json").read_text())["lines"]):
        for margin in (0, 1, 2):
            out.append((f"demo:{i}+{margin}", crop(page, line["points"], margin), line["text"]))
    n = 0
    for image in json.loads((data / "det" / "index.json").read_text())["images"]:
        img = cv2.imread(str(data / "det" / image["image"]))
        for j, line in enumerate(image["lines"]):
            if line["text"] in ("###", ""):
                continue
            margin, n = n % 3, n + 1
            out.append((f"{image['image']}:{j}+{margin}", crop(img, line["points"], margin),
                        line["text"]))  # fmt: skip
    return out[::every]


def read(e2e: Any, crops: list[tuple[str, np.ndarray, str]]) -> dict[str, Any]:
    found = right = 0
    missed = []
    for name, img, text in crops:
        boxes = e2e.detector.detect(img)
        (answer,) = e2e.predict([img])
        got = "".join(line["text"] for line in answer["result"])
        ok = "".join(got.split()) == "".join(text.split())
        found, right = found + bool(boxes), right + ok
        if not ok:
            missed.append([name, text, got])
    return {"found": found, "right": right, "missed": missed}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a text set's folder")
    ap.add_argument("--every", type=int, default=4, help="keep every N-th crop")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    if not (args.data / "det" / "index.json").exists():
        raise SystemExit(f"no text set at {args.data} (../shared/data/textset-public)")
    crops = crop_set(args.data, args.every)
    e2e: Any = build_builtin("ocr", threads=2)
    shipped = e2e.detector.settings
    variants = {"border (shipped)": shipped, "no border": replace(shipped, pad_ratio=0.0)}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for r in range(args.rounds):
        names = list(variants)[r % 2 :] + list(variants)[: r % 2]
        for name in names:
            e2e.detector.settings = variants[name]
            started = time.perf_counter()
            results[name].append(read(e2e, crops))
            results[name][-1]["seconds"] = time.perf_counter() - started
            print(name, {k: v for k, v in results[name][-1].items() if k != "missed"}, flush=True)
    rows = []
    for name, runs in results.items():
        counts = {(run["found"], run["right"]) for run in runs}
        found, right = runs[0]["found"], runs[0]["right"]
        rows.append([name, len(crops), found, right, "yes" if len(counts) == 1 else "NO"])
    print(md_table(["variant", "crops", "found", "read right", "same every round"], rows))
    write_result("tight_crops", {"data": str(args.data), "every": args.every, "results": results})


if __name__ == "__main__":
    main()
