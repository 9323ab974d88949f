#!/usr/bin/env python3
"""Speed of reading a PDF page's own text layer against rendering the page.

For each page, `ocrserve.documents.text_layer.read_text_layer` (load the page, read its
characters, group lines, judge the layer) is timed against rendering the same page at the same
dpi as a worker does (``FPDF_RenderPageBitmap``, annotations drawn): rendering alone is a lower
bound of what OCR costs, so the ratio says how much a born-digital page saves at the least.
Given no PDF, it builds a 12-page born-digital one (dense single-column pages of about 5,000
characters, two-column pages, a rotated page, a scan with an OCR layer). Prints a markdown
table: median and p90 milliseconds per page over the pages (each page's time is its median
over ``--repeat`` runs), and the ratio to rendering, run in the same process.

With ``--ocr`` it also times what a worker does with each page both ways, in alternating
rounds: `ocrserve.documents.reading.read_page` with ``text_layer=auto`` (the layer where it is
usable) against ``text_layer=ocr`` (render, then the bundled end-to-end ``ocr`` model, 2
threads), and prints the ratio on the pages whose layer was used (the same pages, the same
process, the same code path as a served request).

Usage (from the repository root):
python benchmarks/text_layer.py [PDF ...] [--dpi 150] [--ocr] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import pypdfium2 as pdfium
from harness import REPO, md_table, percentile

sys.path.insert(0, str(REPO))
from ocrserve.documents.text_layer import read_text_layer  # noqa: E402
from tests.text_layer_pdfs import (  # noqa: E402  (the tests' hand-written pages)
    Line,
    PdfPage,
    ocr_layer_page,
    pdf,
    rotated_page,
    two_column_page,
)

WORDS = (
    "the of and to in is that for it as with was on be by this are or from at which but not "
    "have an they you were their one all we can her has there been if more when will would "
    "invoice total amount payment customer order delivery address account balance reference"
).split()


def dense_page(seed: int, columns: int = 1) -> PdfPage:
    """A page of 10-point Helvetica, 62 lines of random words per column, 72 points margins."""
    rng = random.Random(seed)
    width = (612 - 144 - 24 * (columns - 1)) / columns
    lines = []
    for column in range(columns):
        x = 72 + column * (width + 24)
        for k in range(62):
            words: list[str] = []
            while sum(len(w) + 1 for w in words) * 5.2 < width - 40:
                words.append(rng.choice(WORDS))
            lines.append(Line(" ".join(words), x, 740 - 11 * k, 10))
    return PdfPage(lines)


def built_document() -> bytes:
    pages = [dense_page(k) for k in range(6)] + [dense_page(k, 2) for k in range(6, 9)]
    return pdf(pages + [two_column_page(), rotated_page(90), ocr_layer_page()])


def page_times(fn: Callable[[int], object], pages: int, repeat: int) -> list[float]:
    """Each page's median milliseconds over ``repeat`` runs of ``fn(page)``, after one run."""
    out = []
    for index in range(pages):
        fn(index)
        runs = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn(index)
            runs.append((time.perf_counter() - start) * 1000)
        out.append(median(runs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdfs", nargs="*", type=Path, help="PDFs to read (default: built)")
    parser.add_argument("--dpi", type=float, default=150.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ocr", action="store_true", help="also time OCR of each page")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (--ocr)")
    args = parser.parse_args()
    scale = args.dpi / 72
    documents = [(p.name, p.read_bytes()) for p in args.pdfs] or [("built", built_document())]
    layer_ms: list[float] = []
    render_ms: list[float] = []
    usable = chars = 0
    for name, data in documents:
        doc = pdfium.PdfDocument(data)
        count = len(doc)

        def render(index: int, doc: pdfium.PdfDocument = doc) -> None:
            page = doc[index]
            page.render(scale=scale, draw_annots=True).close()
            page.close()

        def layer(index: int, doc: pdfium.PdfDocument = doc) -> None:
            read_text_layer(doc, index, scale)

        layer_ms += page_times(layer, count, args.repeat)
        render_ms += page_times(render, count, args.repeat)
        layers = [read_text_layer(doc, index, scale) for index in range(count)]
        usable += sum(layer.usable for layer in layers)
        chars += sum(len(line["text"]) for layer in layers for line in layer.lines)
        print(f"{name}: {count} pages, {sum(layer.usable for layer in layers)} usable")
        doc.close()
    pages = len(layer_ms)
    print(f"\n{pages} pages, {usable} usable, {chars / pages:.0f} characters a page, "
          f"{args.dpi:g} dpi\n")  # fmt: skip
    base = percentile(render_ms, 50)
    rows = [
        (f"render at {args.dpi:g} dpi (baseline)", render_ms),
        ("read_text_layer", layer_ms),
    ]
    print(md_table(
        ["per page", "median ms", "p90 ms", "vs render"],
        [(step, percentile(ms, 50), percentile(ms, 90), f"{percentile(ms, 50) / base:.2f}")
         for step, ms in rows],
    ))  # fmt: skip

    if args.ocr:
        compare_with_ocr(documents, args.dpi, args.rounds)


def compare_with_ocr(documents: list[tuple[str, bytes]], dpi: float, rounds: int) -> None:
    """The worker's page path with the text layer against OCR, alternating, per page."""
    from harness import extracted

    from ocrserve.archives.loader import load_predictor
    from ocrserve.documents.reader import open_document
    from ocrserve.documents.reading import read_page
    from ocrserve.server.worker import limit_threads
    from ocrserve.settings import InputLimits

    limit_threads(2)
    predictor = load_predictor(str(extracted("ocr")), 2)
    limits = InputLimits(dpi=int(dpi))
    times: dict[str, list[float]] = {"auto": [], "ocr": []}
    used = 0
    for _, data in documents:
        source = open_document(data, limits)
        assert source is not None
        for k in range(len(source.numbers)):
            layer = read_page(predictor, source, k, {}, text_layer="auto")
            if not layer.get("text_layer", {}).get("used"):
                continue
            used += 1
            runs: dict[str, list[float]] = {"auto": [], "ocr": []}
            for r in range(rounds):
                for mode in ("auto", "ocr") if r % 2 == 0 else ("ocr", "auto"):
                    start = time.perf_counter()
                    read_page(predictor, source, k, {}, text_layer=mode)
                    runs[mode].append((time.perf_counter() - start) * 1000)
            for mode in runs:
                times[mode].append(median(runs[mode]))
        source.close()
    if not used:
        print("no page had a usable text layer")
        return
    ratios = [o / a for o, a in zip(times["ocr"], times["auto"])]
    print(f"\n{used} pages with a usable layer, {rounds} alternating rounds each:\n")
    print(md_table(
        ["per page", "median ms", "p90 ms"],
        [("text_layer=auto (layer)", percentile(times["auto"], 50), percentile(times["auto"], 90)),
         ("text_layer=ocr (render + ocr)", percentile(times["ocr"], 50),
          percentile(times["ocr"], 90))],
    ))  # fmt: skip
    print(f"\nOCR / layer per page: median {percentile(ratios, 50):.0f}x, "
          f"min {min(ratios):.0f}x, max {max(ratios):.0f}x")  # fmt: skip


if __name__ == "__main__":
    main()
