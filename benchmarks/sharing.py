#!/usr/bin/env python3
"""What one process for the three default models would save, measured (issue 34).

The server runs one worker process per model: ``ocr`` (PP-OCRv6 detector, angle classifier
and recognizer), ``ppocr_det`` (the same detector) and ``ppocr_rec`` (the same recognizer). A
worker that hosted all three would hold the imports (Python, NumPy, OpenCV, ONNX Runtime,
ocrserve) once instead of three times. This measures, each in a fresh child process that
prepares itself as a worker does (`ocrserve.server.worker.limit_threads`, ``tune_malloc``, the
OpenCV import):

- ``imports``: the worker's imports, no model;
- ``ocr``, ``ppocr_det``, ``ppocr_rec``: one model loaded and warmed (10 demo pages, or 10 demo
  word crops for the recognizer), as today's workers;
- ``all three``: the three loaded and warmed in one process (separate sessions: what a shared
  worker with today's predictors would hold).

Each is reported as RSS (what the issue's target sums), USS (memory only this process holds:
what merging processes can save) and PSS (shared pages divided among the processes that map
them), median over ``--rounds`` with the spread.

  python benchmarks/sharing.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from statistics import median

from harness import REPO, md_table, write_result

CHILD = r"""
import json, sys
sys.path.insert(0, {repo!r}); sys.path.insert(0, {bench!r})
from ocrserve.server.worker import _import_opencv, limit_threads, tune_malloc
limit_threads(2)
tune_malloc()
_import_opencv().setNumThreads(2)
import onnxruntime, numpy, psutil
from harness import extracted
from ocrserve.archives.loader import load_predictor
from ocrserve.server.worker import WorkerMemory, _answer
from ocrserve.settings import InputLimits
page = open({repo!r} + "/demo/demo_text_det.jpg", "rb").read()
word = open({repo!r} + "/demo/demo_text_recog.jpg", "rb").read()
memory, limits = WorkerMemory(), InputLimits()
for name in {models!r}:
    predictor = load_predictor(str(extracted(name)), 2)
    body = word if name == "ppocr_rec" else page
    for _ in range(10):
        _answer(predictor, [body], limits)
        memory.after_batch()
    globals()["keep_" + name] = predictor
info = psutil.Process().memory_full_info()
print(json.dumps({{k: getattr(info, k) / 2**20 for k in ("rss", "uss", "pss")}}))
"""

VARIANTS = {
    "imports": [],
    "ocr": ["ocr"],
    "ppocr_det": ["ppocr_det"],
    "ppocr_rec": ["ppocr_rec"],
    "all three": ["ocr", "ppocr_det", "ppocr_rec"],
}


def run(models: list[str]) -> dict[str, float]:
    code = CHILD.format(repo=str(REPO), bench=str(REPO / "benchmarks"), models=models)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    names = list(VARIANTS)
    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            results[name].append(run(VARIANTS[name]))
            print(name, results[name][-1], flush=True)

    def cell(name: str, key: str) -> str:
        values = [x[key] for x in results[name]]
        return f"{median(values):.0f} ({min(values):.0f}-{max(values):.0f})"

    rows = [[name, cell(name, "rss"), cell(name, "uss"), cell(name, "pss")] for name in names]
    separate = {
        k: sum(median(x[k] for x in results[n]) for n in names[1:4]) for k in ("rss", "uss")
    }
    shared = {k: median(x[k] for x in results["all three"]) for k in ("rss", "uss")}
    rows.append(["three workers, summed", f"{separate['rss']:.0f}", f"{separate['uss']:.0f}", ""])
    print(md_table(["process", "RSS MiB", "USS MiB", "PSS MiB"], rows))
    print(
        f"one process instead of three: RSS {separate['rss'] - shared['rss']:.0f} MiB less, "
        f"USS {separate['uss'] - shared['uss']:.0f} MiB less"
    )
    write_result("sharing", {"rounds": args.rounds, "results": results})


if __name__ == "__main__":
    main()
