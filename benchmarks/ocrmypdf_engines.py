#!/usr/bin/env python3
"""OCRmyPDF with ocrserve as its engine vs OCRmyPDF with Tesseract, side by side (issue 37).

The pages of the document set (`benchmarks/docset.py`, its ``report`` half by default) become
scans: one image-only PDF per document, each page its 150-dpi PNG placed at 150 dpi (img2pdf,
which OCRmyPDF itself depends on, so the images are embedded unchanged). OCRmyPDF 17 then makes
each searchable, the same command line for both engines but the plugin:

- Tesseract: ``ocrmypdf -l eng --output-type pdf --jobs 2 SCAN OUT`` (Debian's Tesseract 5;
  OCRmyPDF runs one single-threaded Tesseract per page, ``--jobs`` at a time);
- ocrserve: ``ocrmypdf --plugin ocrserve.ocrmypdf --ocrserve-url URL -l eng --output-type pdf
  --jobs 2 SCAN OUT``, a server of the checkout at its defaults serving the bundled ``ocr``
  model (started once, idle while Tesseract runs); ``--in-process`` adds the plugin with no
  server (the model loaded in each OCRmyPDF worker).

Each round runs every engine on every document (the order rotating from round to round). A
page's text is ``pdftotext -f N -l N OUT -`` (poppler-utils; its reading order: ``-layout``
would join columns side by side into one line), scored by `benchmarks/docscore.py` against
the set's ground truth: mean CER and WER with the lines in the ground truth's order (what was
read, whatever the order), the order-sensitive CER and bag-of-words F1. Pages per second =
pages / the wall time of the OCRmyPDF runs, summed over documents; median and min-max over
rounds.

  python benchmarks/docset.py
  python benchmarks/ocrmypdf_engines.py [--half report] [--rounds 2] [--in-process]
                                        [--limit N] [--set DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docscore
import docset
from harness import Ocrserve, log, md_table, uptime, write_result

DPI = 150


def scans(pages: Sequence[dict[str, Any]], folder: Path) -> dict[str, list[dict[str, Any]]]:
    """One image-only PDF per document of ``pages`` (in ``folder``), and its pages in order."""
    import img2pdf

    by_doc: dict[str, list[dict[str, Any]]] = {}
    for page in pages:
        by_doc.setdefault(page["doc"], []).append(page)
    layout = img2pdf.get_fixed_dpi_layout_fun((DPI, DPI))
    for doc, doc_pages in by_doc.items():
        pngs = [p["png"] for p in doc_pages]
        (folder / f"{doc}.pdf").write_bytes(img2pdf.convert(pngs, layout_fun=layout))
    return by_doc


def ocrmypdf_command(engine: str, url: str | None) -> list[str]:
    command = [sys.executable, "-m", "ocrmypdf", "-l", "eng", "--output-type", "pdf"]
    command += ["--jobs", "2", "--quiet"]
    if engine != "tesseract":
        command += ["--plugin", "ocrserve.ocrmypdf"]
        if url is not None:
            command += ["--ocrserve-url", url]
    return command


def page_text(pdf: Path, number: int) -> str:
    done = subprocess.run(
        ["pdftotext", "-f", str(number), "-l", str(number), str(pdf), "-"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return done.stdout


def run_engine(
    engine: str, base: list[str], by_doc: dict[str, list[dict[str, Any]]], folder: Path
) -> tuple[float, list[str]]:
    """OCRmyPDF over every document: the summed wall time and each page's text, in order."""
    seconds, texts = 0.0, []
    for doc, doc_pages in by_doc.items():
        out = folder / f"{doc}.{engine}.pdf"
        started = time.perf_counter()
        done = subprocess.run(
            [*base, str(folder / f"{doc}.pdf"), str(out)],
            capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        seconds += time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{engine} on {doc}: exit {done.returncode}\n{done.stderr[-2000:]}")
        texts += [page_text(out, n) for n in range(1, len(doc_pages) + 1)]
    return seconds, texts


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--set", type=Path, default=docset.DEFAULT_OUT, help="the built set")
    ap.add_argument("--half", choices=("tune", "report", "all"), default="report")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--in-process", action="store_true", help="also the plugin without a server")
    ap.add_argument("--limit", type=int, help="only the first N pages (a smoke test)")
    args = ap.parse_args(argv)
    for program in ("tesseract", "pdftotext"):
        if shutil.which(program) is None:
            sys.exit(f"{program} not found: apt-get install tesseract-ocr poppler-utils")

    set_dir = args.set.expanduser()
    pages = docset.load(set_dir, None if args.half == "all" else args.half)
    if not pages:
        sys.exit(f"no pages in {set_dir} for half {args.half}")
    pages = pages[: args.limit] if args.limit else pages
    folder = Path(tempfile.mkdtemp(prefix="ocrmypdf-engines-"))
    by_doc = scans(pages, folder)
    ordered = [p for doc_pages in by_doc.values() for p in doc_pages]
    log(f"{len(ordered)} pages in {len(by_doc)} scanned PDFs, {args.rounds} rounds; {uptime()}")

    server = Ocrserve(["ocr"])
    try:
        engines = {
            "tesseract": ocrmypdf_command("tesseract", None),
            "ocrserve (server)": ocrmypdf_command("ocrserve", server.url),
        }
        if args.in_process:
            engines["ocrserve (in process)"] = ocrmypdf_command("ocrserve", None)
        names = list(engines)
        seconds: dict[str, list[float]] = {name: [] for name in names}
        texts: dict[str, list[str]] = {}
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                took, read = run_engine(name.split()[0], engines[name], by_doc, folder)
                seconds[name].append(took)
                texts.setdefault(name, read)
                log(f"round {r + 1}: {name} {len(ordered) / took:.3f} pages/s; {uptime()}")
    finally:
        server.stop()

    rows, record = [], {}
    for name in names:
        scored = [docscore.score_page(p["text"], t) for p, t in zip(ordered, texts[name])]
        mean = {k: statistics.mean(s[k] for s in scored) for k in scored[0]}
        rates = [len(ordered) / s for s in seconds[name]]
        rows.append([
            f"OCRmyPDF + {name}", f"{mean['order_free_cer']:.3f}", f"{mean['order_free_wer']:.3f}",
            f"{mean['cer']:.3f}", f"{mean['bow_f1']:.3f}",
            f"{statistics.median(rates):.3f} ({min(rates):.3f}-{max(rates):.3f})",
        ])  # fmt: skip
        record[name] = {"mean": mean, "pages_per_s": rates, "seconds": seconds[name]}
    print(md_table(["system", "CER", "WER", "ordered CER", "BoW F1", "pages/s"], rows))
    path = write_result(
        "ocrmypdf_engines",
        {"half": args.half, "pages": len(ordered), "rounds": args.rounds, "engines": record},
    )
    log(f"wrote {path}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
