#!/usr/bin/env python3
"""Accuracy and speed of ocrserve's served bundled models vs RapidOCR's own pipeline.

Both sides use the same ONNX weights (PP-OCRv6 small and the v2 angle classifier, shipped in
the ``rapidocr==3.10.0`` wheel). RapidOCR runs twice: at its own defaults and with its detector's
unclip ratio set to ``--rapidocr-unclip`` (its best on textset-public; ``--rapidocr-unclip``
takes several values to find it). On the textset (``../shared/data/textset-public`` by default)
it runs three tasks per side:

  det   full images -> line polygons       ocrserve: POST /predictions/ppocr_det
  e2e   full images -> polygons + text     ocrserve: POST /predictions/ocr
  rec   word crops  -> text                ocrserve: POST /predictions/ppocr_rec

writes one combined prediction JSON per side and task under ``--out``, scores them with
``../shared/tools/evaluate.py`` (det and e2e at line level), and prints a markdown table.

Usage (from the repository root):
  python benchmarks/textset_accuracy.py [--limit 10] [--sides ocrserve rapidocr rapidocr-unclip]
  python benchmarks/textset_accuracy.py --sides rapidocr-unclip --tasks det \
      --rapidocr-unclip 1.0 1.1 1.2 1.3 1.4          # RapidOCR's best unclip ratio
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from ocrserve.server.launcher import LocalServer

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "textset-public"
DEFAULT_EVALUATE = REPO / ".." / "shared" / "tools" / "evaluate.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "textset"
SUMMARY = REPO / "benchmarks" / "results" / "textset_accuracy.json"
TASKS = ("det", "e2e", "rec")
ENDPOINTS = {"det": "ppocr_det", "e2e": "ocr", "rec": "ppocr_rec"}

Pred = dict[str, Any]


# ----------------------------------------------------------------------------- data


class Textset:
    """The det images and rec crops of a textset, optionally cut to the first ``limit`` of each."""

    def __init__(self, root: Path, limit: int | None) -> None:
        det_index = root / "det" / "index.json"
        labels = root / "rec" / "labels.txt"
        if not det_index.is_file() or not labels.is_file():
            sys.exit(
                f"textset_accuracy: no textset at {root} (need det/index.json and rec/labels.txt);"
                " pass --data PATH"
            )
        self.root = root
        self.index = json.loads(det_index.read_text(encoding="utf-8"))
        self.index["images"] = self.index["images"][:limit]
        rows = [ln.split("\t", 1) for ln in labels.read_text(encoding="utf-8").splitlines() if ln]
        self.labels = rows[:limit]
        self.limited = limit is not None

    def keys(self, task: str) -> list[str]:
        """GT keys ("images/img_0003.jpg" or "images/word_00003.jpg") of ``task``'s inputs."""
        if task == "rec":
            return [path for path, _ in self.labels]
        return [im["image"] for im in self.index["images"]]

    def file(self, task: str, key: str) -> Path:
        """The image file behind ``key``."""
        return self.root / ("rec" if task == "rec" else "det") / key

    def eval_root(self, scratch: Path) -> Path:
        """A data root for evaluate.py holding only the selected GT (the full one if no limit)."""
        if not self.limited:
            return self.root
        (scratch / "det").mkdir(parents=True, exist_ok=True)
        (scratch / "rec").mkdir(parents=True, exist_ok=True)
        (scratch / "det" / "index.json").write_text(json.dumps(self.index), encoding="utf-8")
        text = "".join(f"{path}\t{label}\n" for path, label in self.labels)
        (scratch / "rec" / "labels.txt").write_text(text, encoding="utf-8")
        return scratch


# ----------------------------------------------------------------------------- running


def progress(label: str, done: int, total: int) -> None:
    """A one-line progress counter on stderr (only the final count when it is not a terminal)."""
    if done == total:
        print(f"\r  {label}: {done}/{total}", file=sys.stderr, flush=True)
    elif sys.stderr.isatty():
        print(f"\r  {label}: {done}/{total}", end="", file=sys.stderr, flush=True)


def run_task(
    label: str,
    keys: list[str],
    predict: Callable[[str], Pred | None],
    concurrency: int,
) -> tuple[dict[str, Pred | None], float]:
    """Predict every key (the first one once more beforehand, as untimed warm-up)."""
    if keys:
        predict(keys[0])
    results: dict[str, Pred | None] = {}
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for i, (key, pred) in enumerate(zip(keys, pool.map(predict, keys), strict=True), 1):
            results[key] = pred
            progress(label, i, len(keys))
    return results, time.perf_counter() - start


def flat(points: Iterable[Iterable[float]]) -> list[float]:
    """[[x, y], ...] -> [x, y, ...] rounded to 0.1 px."""
    return [round(float(v), 1) for pt in points for v in pt]


class RapidOCRSide:
    """rapidocr 3.10's own pipeline in this process: its defaults, or another unclip ratio."""

    concurrency = 1  # one engine, called sequentially

    def __init__(self, data: Textset, unclip_ratio: float | None = None) -> None:
        from rapidocr import RapidOCR

        self.data = data
        self.unclip_ratio = unclip_ratio
        self.name = "rapidocr" if unclip_ratio is None else f"rapidocr-unclip-{unclip_ratio:g}"
        self.engine = RapidOCR(params={"Global.log_level": "warning"})

    def predictor(self, task: str) -> Callable[[str], Pred | None]:
        """A function key -> prediction in evaluate.py's format for ``task``."""

        def run(key: str, det: bool, cls: bool, rec: bool) -> Any:
            # Every flag every call: RapidOCR keeps the last call's flags as its new defaults.
            return self.engine(
                str(self.data.file(task, key)),
                use_det=det,
                use_cls=cls,
                use_rec=rec,
                unclip_ratio=self.unclip_ratio,
            )

        def det(key: str) -> Pred:
            out = run(key, True, False, False)
            boxes = [] if out.boxes is None else out.boxes
            scores = [1.0] * len(boxes) if out.scores is None else out.scores
            return {"boundary_result": [flat(b) + [float(s)] for b, s in zip(boxes, scores)]}

        def e2e(key: str) -> Pred:
            # RapidOCR gives boxes, texts and text scores, no box score.
            out = run(key, True, True, True)
            lines = zip(out.boxes, out.txts, out.scores) if out.txts else []
            result = [
                {"box": flat(box), "box_score": 1.0, "text": text, "text_score": float(score)}
                for box, text, score in lines
            ]
            return {"result": result}

        def rec(key: str) -> Pred:
            out = run(key, False, False, True)
            text, score = (out.txts[0], out.scores[0]) if out.txts else ("", 0.0)
            return {"text": text, "score": float(score)}

        return {"det": det, "e2e": e2e, "rec": rec}[task]

    def close(self) -> None:
        """Nothing to release."""


class OcrserveSide:
    """The checkout's ``ocrserve start --foreground`` on free loopback ports, queried over HTTP."""

    name = "ocrserve"

    def __init__(
        self, data: Textset, out: Path, concurrency: int, extra_args: list[str], timeout: float
    ) -> None:
        self.data = data
        self.concurrency = concurrency
        self.server = LocalServer(out / "ocrserve-server", *extra_args, pythonpath=REPO)
        print(f"  starting: {shlex.join(self.server.args)}", file=sys.stderr)
        self.client = httpx.Client(base_url=self.server.url, timeout=120.0)
        try:
            self.server.wait_healthy(timeout)
        except RuntimeError as exc:
            self.fail(str(exc).splitlines()[0])

    def fail(self, why: str) -> None:
        """Stop the server and exit, showing the end of its log."""
        self.close()
        tail = self.server.log()[-3000:]
        sys.exit(f"textset_accuracy: {why}; server log {self.server.log_path}:\n{tail}")

    def predictor(self, task: str) -> Callable[[str], Pred | None]:
        """A function key -> the endpoint's JSON answer (None after an error, which is logged)."""
        url = f"/predictions/{ENDPOINTS[task]}"

        def predict(key: str) -> Pred | None:
            body = self.data.file(task, key).read_bytes()
            try:
                r = self.client.post(url, content=body)
                r.raise_for_status()
                answer: Pred = r.json()
                return answer
            except (httpx.HTTPError, ValueError) as exc:
                print(f"\n  {url} {key}: {exc!r}", file=sys.stderr)
                return None

        return predict

    def close(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 30 s)."""
        self.client.close()
        self.server.stop(timeout=30)


# ----------------------------------------------------------------------------- scoring


def evaluate(evaluate_py: Path, task: str, data_root: Path, pred: Path) -> dict[str, Any]:
    """Run evaluate.py on one combined prediction file and return its JSON summary."""
    args = ["rec"] if task == "rec" else ["det", "--level", "line"]
    out = pred.with_name(pred.stem + "_score.json")
    cmd = [sys.executable, str(evaluate_py), *args, "--data", str(data_root)]
    cmd += ["--pred", str(pred), "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"textset_accuracy: {shlex.join(cmd)} failed:\n{done.stderr[-3000:]}")
    summary: dict[str, Any] = json.loads(done.stdout)
    return summary


def run_side(
    side: RapidOCRSide | OcrserveSide,
    data: Textset,
    out: Path,
    evaluate_py: Path,
    data_root: Path,
    tasks: Iterable[str] = TASKS,
) -> dict[str, Any]:
    """Predict and score the tasks on one side."""
    report: dict[str, Any] = {}
    (out / side.name).mkdir(parents=True, exist_ok=True)
    for task in tasks:
        keys = data.keys(task)
        preds, wall = run_task(f"{side.name} {task}", keys, side.predictor(task), side.concurrency)
        path = out / side.name / f"{task}.json"
        path.write_text(json.dumps(preds), encoding="utf-8")
        report[task] = {
            "score": evaluate(evaluate_py, task, data_root, path),
            "n": len(keys),
            "errors": sum(1 for p in preds.values() if p is None),
            "wall_s": round(wall, 3),
            "per_s": round(len(keys) / wall, 2) if wall > 0 else None,
        }
    report["concurrency"] = side.concurrency
    return report


# ----------------------------------------------------------------------------- report

# (label, task, field of the task's report or of evaluate.py's summary, format)
ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("det H-mean (line, IoU 0.5)", "det", "det_hmean", ".4f"),
    ("det precision", "det", "det_precision", ".4f"),
    ("det recall", "det", "det_recall", ".4f"),
    ("e2e H-mean (line)", "e2e", "e2e_hmean", ".4f"),
    ("e2e det H-mean (line)", "e2e", "det_hmean", ".4f"),
    ("e2e text accuracy on matched lines", "e2e", "e2e_word_acc", ".4f"),
    ("rec accuracy, case-sensitive", "rec", "acc_cs", ".4f"),
    ("rec accuracy, case-insensitive", "rec", "acc", ".4f"),
    ("rec 1-NED", "rec", "one_minus_ned", ".4f"),
    ("det images/s", "det", "per_s", ".2f"),
    ("e2e images/s", "e2e", "per_s", ".2f"),
    ("rec crops/s", "rec", "per_s", ".1f"),
    ("det wall time (s)", "det", "wall_s", ".2f"),
    ("e2e wall time (s)", "e2e", "wall_s", ".2f"),
    ("rec wall time (s)", "rec", "wall_s", ".2f"),
    ("det failed requests", "det", "errors", "d"),
    ("e2e failed requests", "e2e", "errors", "d"),
    ("rec failed requests", "rec", "errors", "d"),
)


def table(sides: dict[str, dict[str, Any]]) -> str:
    """The markdown table: metric | one column per side."""
    names = list(sides)

    def cell(name: str, task: str, key: str, fmt: str) -> str:
        report = sides.get(name, {}).get(task)
        if report is None or task not in sides.get(name, {}):
            return "-"
        value = report.get(key, report["score"].get(key))
        return "-" if value is None else format(value, fmt)

    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, task, key, fmt in ROWS:
        row = [cell(name, task, key, fmt) for name in names]
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    row = [str(sides[name]["concurrency"]) if name in sides else "-" for name in names]
    lines.append("| concurrent requests | " + " | ".join(row) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="textset root (det/, rec/)")
    ap.add_argument("--evaluate", type=Path, default=DEFAULT_EVALUATE, help="evaluate.py")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="prediction/score folder")
    ap.add_argument("--summary", type=Path, default=SUMMARY, help="summary JSON to write")
    ap.add_argument("--limit", type=int, help="only the first N det images and N rec crops")
    ap.add_argument("--concurrency", type=int, default=2, help="parallel requests to ocrserve")
    ap.add_argument(
        "--sides",
        nargs="+",
        choices=["ocrserve", "rapidocr", "rapidocr-unclip"],
        default=["ocrserve", "rapidocr", "rapidocr-unclip"],
        help="rapidocr: its defaults; rapidocr-unclip: with --rapidocr-unclip",
    )
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument(
        "--rapidocr-unclip",
        nargs="+",
        type=float,
        default=[0.9],
        help="unclip ratio(s) for the rapidocr-unclip side (default 0.9: its best of 0.7-1.6 "
        "on textset-public, docs/models.md)",
    )
    ap.add_argument("--startup-timeout", type=float, default=120.0, help="seconds for /ping")
    ap.add_argument(
        "--server-args", default="", help="extra arguments for `ocrserve start` (one string)"
    )
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be >= 1")
    if args.concurrency < 1:
        ap.error("--concurrency must be >= 1")
    if not args.evaluate.is_file():
        ap.error(f"evaluate.py not found at {args.evaluate}; pass --evaluate PATH")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table and write the summary JSON."""
    args = parse_args(argv)
    args.data = args.data.resolve()
    data = Textset(args.data, args.limit)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    data_root = data.eval_root(out / "gt_subset")
    sides: dict[str, dict[str, Any]] = {}
    runs: list[tuple[str, float | None]] = []
    for name in args.sides:
        if name == "rapidocr-unclip":
            runs.extend((name, u) for u in args.rapidocr_unclip)
        else:
            runs.append((name, None))
    for name, unclip in runs:
        side: RapidOCRSide | OcrserveSide
        if name == "ocrserve":
            extra = shlex.split(args.server_args)
            side = OcrserveSide(data, out, args.concurrency, extra, args.startup_timeout)
        else:
            side = RapidOCRSide(data, unclip)
        print(f"{side.name}:", file=sys.stderr)
        try:
            sides[side.name] = run_side(side, data, out, args.evaluate, data_root, args.tasks)
        finally:
            side.close()
    summary = {
        "data": str(args.data),
        "limit": args.limit,
        "n_det_images": len(data.keys("det")),
        "n_rec_crops": len(data.keys("rec")),
        "sides": sides,
    }
    args.summary.parent.mkdir(parents=True, exist_ok=True)
    args.summary.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    n_det, n_rec = summary["n_det_images"], summary["n_rec_crops"]
    print(f"\n{n_det} det images, {n_rec} rec crops from {args.data}\n")
    print(table(sides))
    print(f"\nwrote {args.summary} and predictions under {out}")


if __name__ == "__main__":
    main()
