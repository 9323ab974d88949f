#!/usr/bin/env python3
"""Choose the bundled PP-OCR settings on a textset: the measurements behind docs/models.md.

In process (no server), on the bundled weights, scored with ``../shared/tools/evaluate.py``'s own
functions at line level. Three stages, each a handful of named candidates:

  det   detection resize and normalisation (one network pass per image per candidate), then
        DB thresholds and unclip ratios on the cached probability maps: line-level det H-mean
  e2e   end to end with the chosen detection: angle classifier on/off, recognition batch size
  rec   the word crops, one per call (as the served ppocr_rec answers them) and in batches

Settings are chosen on textset-public only; run the same command with ``--data`` pointing at
textset-val to check (never to choose) them.

Usage (from the repository root):
  python benchmarks/ppocr_settings.py --stage det [--data ../shared/data/textset-public]
  python benchmarks/ppocr_settings.py --stage e2e --det '{"limit_side_len": 736, ...}'
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from ocrserve.imaging import decode
from ocrserve.ppocr import DEFAULT_CONFIG, build_ppocr
from ocrserve.ppocr.det import DBSettings, PPOCRDetector, db_boxes, normalize, resize_for_det
from ocrserve.ppocr.e2e import PPOCREndToEnd
from ocrserve.ppocr.rec import PPOCRRecognizer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "textset-public"
DEFAULT_EVALUATE = REPO / ".." / "shared" / "tools" / "evaluate.py"

#: Detection resize/normalisation candidates: PaddleOCR 2.7's published rule, RapidOCR's rule
#: (shorter side raised to 736, longer side capped at 2000 as its ``max_side_len``), and the
#: same with the other normalisation.
RESIZE: dict[str, dict[str, Any]] = {
    "max960-imagenet": {"limit_type": "max", "limit_side_len": 960},
    "min736-imagenet": {"limit_type": "min", "limit_side_len": 736, "max_side_len": 2000},
    "min736-half": {
        "limit_type": "min",
        "limit_side_len": 736,
        "max_side_len": 2000,
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
    },
    "min960-imagenet": {"limit_type": "min", "limit_side_len": 960, "max_side_len": 2000},
}
#: DB post-processing candidates (pixel threshold, box threshold, unclip ratio).
POST: list[tuple[float, float, float]] = [
    (0.3, 0.6, 1.5),  # PaddleOCR's published
    (0.3, 0.5, 1.6),  # RapidOCR's
    (0.3, 0.6, 1.2),
    (0.3, 0.6, 1.3),
    (0.3, 0.6, 1.4),
    (0.3, 0.5, 1.3),
    (0.3, 0.6, 1.1),  # after 1.2 came out best above: the trend beyond it
    (0.3, 0.6, 1.0),
    # After the demo page's green panel came out as a box scoring 0.617: a stricter box threshold
    (0.3, 0.65, 1.2),
    (0.3, 0.7, 1.2),
]


def load_evaluate(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("textset_evaluate", path)
    if spec is None or spec.loader is None:
        sys.exit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def det_images(data: Path) -> list[tuple[str, np.ndarray]]:
    index = json.loads((data / "det" / "index.json").read_text(encoding="utf-8"))
    return [
        (im["image"], decode((data / "det" / im["image"]).read_bytes(), 10**9))
        for im in index["images"]
    ]


def stage_det(data: Path, ev: ModuleType, only: list[str] | None) -> None:
    gt = ev.load_gt_det(str(data), "line")
    images = det_images(data)
    print("| resize | thresh | box_thresh | unclip | det P | det R | det H-mean | net s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, resize in RESIZE.items():
        if only and name not in only:
            continue
        settings = DBSettings(**resize)
        det = PPOCRDetector(2, settings)
        maps = []
        start = time.perf_counter()
        for _, img in images:
            x = normalize(resize_for_det(img, settings), settings.mean, settings.std)
            maps.append(det.session.run(None, {det._input: x})[0][0, 0])
        net_s = time.perf_counter() - start
        for thresh, box_thresh, unclip in POST:
            post = DBSettings(**resize, thresh=thresh, box_thresh=box_thresh, unclip_ratio=unclip)
            preds = {}
            for (key, img), prob in zip(images, maps):
                boxes = db_boxes(prob, img.shape[0], img.shape[1], post)
                preds[key] = {"boundary_result": [[*b.reshape(-1).tolist(), s] for b, s in boxes]}
            res, _ = ev.score_det(gt, preds)
            print(
                f"| {name} | {thresh} | {box_thresh} | {unclip} | {res['det_precision']:.4f} "
                f"| {res['det_recall']:.4f} | {res['det_hmean']:.4f} | {net_s:.1f} |",
                flush=True,
            )


def stage_e2e(data: Path, ev: ModuleType, det: dict[str, Any]) -> None:
    gt = ev.load_gt_det(str(data), "line")
    images = det_images(data)
    config = {**DEFAULT_CONFIG, "det": det}
    print("| classifier | rec batch | e2e H-mean | e2e text acc (matched) | det H-mean | s |")
    print("|---|---:|---:|---:|---:|---:|")
    for use_cls, batch in [(True, 6), (False, 6), (True, 1), (True, 12)]:
        cfg = {**config, "rec": {**config["rec"], "batch_num": batch}}
        e2e = build_ppocr("e2e", {"det": None, "rec": None, "cls": None}, cfg, 2)
        assert isinstance(e2e, PPOCREndToEnd)
        if not use_cls:
            e2e.classifier = None
        start = time.perf_counter()
        preds = {key: e2e.predict([img])[0] for key, img in images}
        wall = time.perf_counter() - start
        res, _ = ev.score_det(gt, preds, strip_space=True)
        print(
            f"| {'on' if use_cls else 'off'} | {batch} | {res['e2e_hmean']:.4f} "
            f"| {res['e2e_word_acc']:.4f} | {res['det_hmean']:.4f} | {wall:.1f} |",
            flush=True,
        )


def stage_rec(data: Path, ev: ModuleType) -> None:
    gt = ev.load_gt_rec(str(data))
    crops = [(key, decode((data / "rec" / key).read_bytes(), 10**9)) for key in gt]
    print("| rec calls | acc (case-sensitive) | acc | 1-NED | s |")
    print("|---|---:|---:|---:|---:|")
    for batch in (1, 6):
        rec = PPOCRRecognizer(2, batch_num=batch)
        start = time.perf_counter()
        if batch == 1:
            texts = [rec.recognize([img])[0] for _, img in crops]
        else:
            texts = rec.recognize([img for _, img in crops])
        wall = time.perf_counter() - start
        preds = {key: {"text": t} for (key, _), (t, _) in zip(crops, texts)}
        res, _ = ev.score_rec(gt, preds)
        label = "one crop per call" if batch == 1 else f"batches of {batch}"
        print(
            f"| {label} | {res['acc_cs']:.4f} | {res['acc']:.4f} "
            f"| {res['one_minus_ned']:.4f} | {wall:.1f} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--stage", choices=["det", "e2e", "rec"], required=True)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--evaluate", type=Path, default=DEFAULT_EVALUATE)
    ap.add_argument("--resize", nargs="+", choices=sorted(RESIZE), help="det: only these")
    ap.add_argument(
        "--det", default="{}", help="e2e: detection settings as JSON (default: the bundled ones)"
    )
    args = ap.parse_args(argv)
    if not (args.data / "det" / "index.json").is_file():
        sys.exit(f"ppocr_settings: no textset at {args.data}; pass --data PATH")
    if not args.evaluate.is_file():
        sys.exit(f"ppocr_settings: evaluate.py not found at {args.evaluate}; pass --evaluate")
    ev = load_evaluate(args.evaluate)
    print(f"{args.data.resolve()}\n")
    if args.stage == "det":
        stage_det(args.data, ev, args.resize)
    elif args.stage == "e2e":
        det = {**DEFAULT_CONFIG["det"], **json.loads(args.det)}
        stage_e2e(args.data, ev, det)
    else:
        stage_rec(args.data, ev)


if __name__ == "__main__":
    main()
