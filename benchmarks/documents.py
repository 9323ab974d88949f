#!/usr/bin/env python3
"""Documents side by side: ocrserve's ``ocr`` served, Tesseract 5 and RapidOCR 3.10 on the pages
of the document set (`benchmarks/docset.py`), in one run, alternating rounds.

- ocrserve: the checkout's ``ocrserve start`` on free loopback ports at its defaults, serving
  the bundled ``ocr`` model; each page sent as its 150-dpi PNG with the options a PDF's page
  gets by default (``reading_order=columns&orientation=true``) (``--send pdf``: the page as a
  one-page PDF with ``text_layer=ocr&dpi=150``, so that the server renders and OCRs it),
  answered with ``format=text`` (the server's reading order).
- Tesseract 5 from Debian (``apt-get install tesseract-ocr tesseract-ocr-eng``): ``tesseract
  PAGE.png stdout -l eng`` with ``OMP_THREAD_LIMIT=1``, one process per page.
- RapidOCR 3.10 at its defaults behind `benchmarks/peers/rapidocr_server.py` (one engine, one
  request at a time, ONNX Runtime with ocrserve's thread count); its lines in its order.

Each round runs every system in turn (the order rotating from round to round; all servers up
throughout, idle while another is measured) through two passes over the same pages:

1. *latency*: the pages one at a time; per-page seconds, and the text scored by
   `benchmarks/docscore.py` (the first round's; later rounds must answer the same);
2. *throughput*: a stream of ``--stream`` pages (every n-th, across the documents), each
   system using the 2 cores its best way: ocrserve and RapidOCR with 2 concurrent clients,
   Tesseract as 2 processes with one thread each; pages per second = pages / wall time.

Accuracy columns: mean over pages of CER and WER with the hypothesis's lines put in the
ground truth's order (``order_free_cer``, ``order_free_wer``: what was read, whatever the
order), bag-of-words F1, and the order-sensitive CER (``cer``: in the system's own reading
order); on the pages marked two-column, the order-sensitive and order-free CER side by side.
Speed columns give the median and the min-max over rounds. ``later rounds must answer the
same``: a page answered differently is counted and reported under the table.

``--accuracy-only`` skips the timing: the systems read the pages all at once, 2 pages in
flight each (for a machine too busy for timings to mean anything). ``--rescore RESULT.json``
scores an earlier run's texts against the set's ground truth as it is now.

Usage (from the repository root; build the set first):
  python benchmarks/docset.py
  python benchmarks/documents.py [--half report] [--rounds 2] [--stream 12] [--send png|pdf]
                                 [--systems ocrserve tesseract rapidocr] [--set DIR]
                                 [--accuracy-only] [--sample N] [--limit N]
                                 [--server-args "--default-response-timeout 1800"]
  python benchmarks/documents.py --rescore benchmarks/results/documents.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docscore
import docset
import httpx
import pikepdf
from harness import Ocrserve, RapidOCRServer, log, md_table, uptime, write_result

Reader = Callable[[dict[str, Any]], str]


def _ocrserve_reader(server: Ocrserve, send: str) -> Reader:
    url = server.predictions("ocr")
    client = httpx.Client(timeout=600)

    def read(page: dict[str, Any]) -> str:
        if send == "pdf":
            body, params = _one_page_pdf(page["pdf"], page["page"]), {"text_layer": "ocr"}
            params["dpi"] = str(docset.DPI)
        else:  # a page image, read as a PDF's page is by default
            body = Path(page["png"]).read_bytes()
            params = {"reading_order": "columns", "orientation": "true"}
        r = client.post(url, content=body, params={**params, "format": "text"})
        r.raise_for_status()
        return r.text

    return read


def _one_page_pdf(pdf: str, page: int) -> bytes:
    import io

    with pikepdf.open(pdf) as src, pikepdf.new() as one:
        one.pages.append(src.pages[page - 1])
        buf = io.BytesIO()
        one.save(buf)
        return buf.getvalue()


def _tesseract_reader() -> Reader:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}

    def read(page: dict[str, Any]) -> str:
        done = subprocess.run(
            ["tesseract", page["png"], "stdout", "-l", "eng"],
            env=env,
            capture_output=True,
            check=True,
        )
        return done.stdout.decode("utf-8", "replace")

    return read


def _rapidocr_reader(server: RapidOCRServer) -> Reader:
    url = server.predictions("rapidocr")
    client = httpx.Client(timeout=600)

    def read(page: dict[str, Any]) -> str:
        r = client.post(url, content=Path(page["png"]).read_bytes())
        r.raise_for_status()
        return "\n".join(line["text"] for line in r.json()["result"])

    return read


def latency_pass(read: Reader, pages: Sequence[dict[str, Any]]) -> tuple[list[float], list[str]]:
    """Each page alone: seconds and text."""
    seconds, texts = [], []
    for page in pages:
        start = time.perf_counter()
        texts.append(read(page))
        seconds.append(time.perf_counter() - start)
    return seconds, texts


def throughput_pass(read: Reader, pages: Sequence[dict[str, Any]], clients: int) -> float:
    """Pages per second with ``clients`` pages in flight."""
    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(read, pages))
    return len(pages) / (time.perf_counter() - start)


def score(pages: Sequence[dict[str, Any]], texts: Sequence[str]) -> dict[str, Any]:
    """Mean measures over the pages, and the per-page ones."""
    per_page = [docscore.score_page(p["text"], t) for p, t in zip(pages, texts, strict=True)]
    keys = ("cer", "wer", "order_free_cer", "order_free_wer", "bow_f1")
    mean = {k: statistics.mean(s[k] for s in per_page) for k in keys}
    two = [s for p, s in zip(pages, per_page, strict=True) if p["two_column"]]
    for k in ("cer", "order_free_cer"):
        mean[f"two_column_{k}"] = statistics.mean(s[k] for s in two) if two else float("nan")
    pages_out = [{"id": p["id"], **s} for p, s in zip(pages, per_page, strict=True)]
    return {"mean": mean, "two_column_pages": len(two), "pages": pages_out}


def _spread(values: Sequence[float], digits: int = 2) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, default=docset.DEFAULT_OUT, help="the built set")
    ap.add_argument("--half", choices=("tune", "report", "all"), default="report")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--stream", type=int, default=12, help="pages in the throughput stream")
    ap.add_argument("--send", choices=("png", "pdf"), default="png", help="ocrserve's input")
    ap.add_argument("--systems", nargs="+", default=["ocrserve", "tesseract", "rapidocr"])
    ap.add_argument("--server-args", default="", help="extra `ocrserve start` arguments")
    ap.add_argument(
        "--accuracy-only",
        action="store_true",
        help="no timing: all systems at once, 2 pages in flight each (on a busy machine)",
    )
    ap.add_argument(
        "--rescore",
        type=Path,
        help="score the texts of an earlier result file against the set's ground truth now",
    )
    ap.add_argument("--limit", type=int, help="only the first N pages (a smoke test)")
    ap.add_argument("--sample", type=int, help="only N pages, every n-th (across documents)")
    ap.add_argument("--tag", default="", help="suffix of the result file's name")
    args = ap.parse_args(argv)

    pages = docset.load(args.set.expanduser(), None if args.half == "all" else args.half)
    if not pages:
        sys.exit(f"no pages in {args.set} for half {args.half}")
    pages = pages[: args.limit] if args.limit else pages
    if args.sample:
        pages = pages[:: max(1, len(pages) // args.sample)][: args.sample]
    if args.rescore:
        return _rescore(args, pages)
    stream = pages[:: max(1, len(pages) // args.stream)][: args.stream]  # across documents
    log(f"{len(pages)} pages ({args.half}), stream of {len(stream)}, {args.rounds} rounds")
    if "tesseract" in args.systems and shutil.which("tesseract") is None:
        sys.exit("tesseract not found: apt-get install tesseract-ocr tesseract-ocr-eng")

    servers: list[Any] = []
    readers: dict[str, Reader] = {}
    clients: dict[str, int] = {}
    info: dict[str, Any] = {}
    try:
        if "ocrserve" in args.systems:
            log("starting ocrserve (ocr)")
            ours = Ocrserve(["ocr"], *args.server_args.split())
            servers.append(ours)
            described = ours.describe("ocr")
            info["ocrserve"] = {
                "workers": len(described["workers"]),
                "threads": described.get("cpuThreads"),
                "send": args.send,
            }
            readers["ocrserve"] = _ocrserve_reader(ours, args.send)
            clients["ocrserve"] = 2
        if "tesseract" in args.systems:
            version = subprocess.run(["tesseract", "--version"], capture_output=True, text=True)
            info["tesseract"] = {"version": version.stdout.splitlines()[0], "processes": 2}
            readers["tesseract"] = _tesseract_reader()
            clients["tesseract"] = 2  # each page its own single-threaded process
        if "rapidocr" in args.systems:
            threads = int(info.get("ocrserve", {}).get("threads") or 2)
            log(f"starting RapidOCR's server ({threads} threads)")
            theirs = RapidOCRServer(threads)
            servers.append(theirs)
            info["rapidocr"] = {"threads": threads}
            readers["rapidocr"] = _rapidocr_reader(theirs)
            clients["rapidocr"] = 2
        if args.accuracy_only:
            return _accuracy_only(args, pages, readers, clients, info)
        return _run(args, pages, stream, readers, clients, info)
    finally:
        for server in servers:
            server.stop()


def _run(
    args: argparse.Namespace,
    pages: list[dict[str, Any]],
    stream: list[dict[str, Any]],
    readers: dict[str, Reader],
    clients: dict[str, int],
    info: dict[str, Any],
) -> None:
    names = list(readers)
    for name in names:  # warm-up: one page each
        readers[name](pages[0])
    latency: dict[str, list[float]] = {n: [] for n in names}  # per page, all rounds
    medians: dict[str, list[float]] = {n: [] for n in names}  # per round
    rates: dict[str, list[float]] = {n: [] for n in names}
    texts: dict[str, list[str]] = {}
    changed: dict[str, int] = {n: 0 for n in names}
    loads = []
    for r in range(args.rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            log(f"round {r + 1}: {name} latency pass ({len(pages)} pages)")
            seconds, got = latency_pass(readers[name], pages)
            latency[name] += seconds
            medians[name].append(statistics.median(seconds))
            if name not in texts:
                texts[name] = got
            else:
                changed[name] += sum(a != b for a, b in zip(texts[name], got, strict=True))
            log(f"round {r + 1}: {name} throughput pass ({len(stream)} pages)")
            rates[name].append(throughput_pass(readers[name], stream, clients[name]))
            loads.append(uptime())
    scores = {n: score(pages, texts[n]) for n in names}
    rows = []
    for n in names:
        m = scores[n]["mean"]
        rows.append(
            [
                n,
                f"{m['order_free_cer']:.3f}",
                f"{m['order_free_wer']:.3f}",
                f"{m['bow_f1']:.3f}",
                f"{m['cer']:.3f}",
                f"{m['two_column_cer']:.3f} / {m['two_column_order_free_cer']:.3f}",
                _spread(medians[n]),
                _spread(rates[n], 3),
            ]
        )
    headers = [
        "system",
        "mean CER",
        "mean WER",
        "bag-of-words F1",
        "order-sensitive CER",
        f"two-column CER, in order / order-free ({scores[names[0]]['two_column_pages']} pages)",
        "s/page, one at a time (median)",
        f"pages/s, stream of {len(stream)} (2 cores)",
    ]
    table = md_table(headers, rows)
    print(f"\n{len(pages)} pages ({args.half} half), {args.rounds} rounds\n")
    print(table)
    for n in names:
        if changed[n]:
            print(f"note: {n} answered {changed[n]} page(s) differently in later rounds")
    path = write_result(
        f"documents{args.tag}",
        {
            "half": args.half,
            "pages": [p["id"] for p in pages],
            "stream": [p["id"] for p in stream],
            "rounds": args.rounds,
            "systems": info,
            "scores": scores,
            "latency_s": {n: docscore_summary(latency[n]) for n in names},
            "latency_median_per_round_s": medians,
            "pages_per_s_per_round": rates,
            "changed_answers": changed,
            "loads": loads,
            "texts": texts,
            "table": table,
        },
    )
    log(f"wrote {path}")


def _accuracy_only(
    args: argparse.Namespace,
    pages: list[dict[str, Any]],
    readers: dict[str, Reader],
    clients: dict[str, int],
    info: dict[str, Any],
) -> None:
    """Every system reads every page once, all systems at the same time: texts and scores, no
    timing (for a machine too busy for timings to mean anything)."""
    names = list(readers)
    with ThreadPoolExecutor(len(names)) as outer:
        jobs = {n: outer.submit(_read_all, readers[n], pages, clients[n], n) for n in names}
        texts, failed = {}, {}
        for n, job in jobs.items():
            try:
                texts[n] = job.result()
            except RuntimeError as exc:
                failed[n] = str(exc)
    if failed:
        log(f"left out of the table: {failed}")
    if not texts:
        sys.exit("no system read every page")
    scores, table = _accuracy_table(pages, texts)
    print(f"\n{len(pages)} pages ({args.half} half), accuracy only\n")
    print(table)
    path = write_result(
        f"documents_accuracy{args.tag}",
        {"half": args.half, "pages": [p["id"] for p in pages], "systems": info,
         "scores": scores, "texts": texts, "failed": failed, "table": table, "load": uptime()},
    )  # fmt: skip
    log(f"wrote {path}")


def _accuracy_table(pages: list[dict[str, Any]], texts: dict[str, list[str]]) -> tuple[Any, str]:
    names = list(texts)
    scores = {n: score(pages, texts[n]) for n in names}
    rows = []
    for n in names:
        m = scores[n]["mean"]
        rows.append([
            n, f"{m['order_free_cer']:.3f}", f"{m['order_free_wer']:.3f}", f"{m['bow_f1']:.3f}",
            f"{m['cer']:.3f}",
            f"{m['two_column_cer']:.3f} / {m['two_column_order_free_cer']:.3f}",
        ])  # fmt: skip
    headers = [
        "system", "mean CER", "mean WER", "bag-of-words F1", "order-sensitive CER",
        f"two-column CER, in order / order-free ({scores[names[0]]['two_column_pages']} pages)",
    ]  # fmt: skip
    return scores, md_table(headers, rows)


def _rescore(args: argparse.Namespace, pages: list[dict[str, Any]]) -> None:
    """Score an earlier run's texts against the set as it is now (a changed ground truth)."""
    import json

    old = json.loads(args.rescore.read_text())
    by_id = {p["id"]: p for p in pages}
    missing = [pid for pid in old["pages"] if pid not in by_id]
    if missing:
        sys.exit(f"pages of {args.rescore} not in the set: {missing}")
    chosen = [by_id[pid] for pid in old["pages"]]
    scores, table = _accuracy_table(chosen, old["texts"])
    print(f"\n{len(chosen)} pages of {args.rescore.name}, rescored\n")
    print(table)
    old.update(scores=scores, table=table, rescored=True)
    args.rescore.write_text(json.dumps(old, indent=1) + "\n")


def _read_all(read: Reader, pages: Sequence[dict[str, Any]], clients: int, name: str) -> list[str]:
    def one(page: dict[str, Any]) -> str:
        for attempt in (1, 2):
            try:
                return read(page)
            except (httpx.HTTPError, subprocess.CalledProcessError) as exc:
                log(f"{name}: {page['id']} failed ({exc!r}), attempt {attempt}")
        raise RuntimeError(f"{name} could not read {page['id']} twice")

    with ThreadPoolExecutor(clients) as pool:
        texts = list(pool.map(one, pages))
    log(f"{name}: read {len(pages)} pages")
    return texts


def docscore_summary(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p90 and mean of per-page seconds."""
    s = sorted(seconds)
    return {
        "n": len(s),
        "median": statistics.median(s),
        "p90": s[min(len(s) - 1, int(0.9 * (len(s) - 1) + 0.5))],
        "mean": statistics.mean(s),
    }


if __name__ == "__main__":
    main()
