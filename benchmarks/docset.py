#!/usr/bin/env python3
"""A public document set: real PDFs shipped in Debian packages, rendered at 150 dpi, with ground
truth from their own text layers. Kept out of the repository (a cache folder) so that nothing
is tuned on it by accident; this script rebuilds it the same way anywhere.

Building (no package is installed: ``apt-get download`` fetches each ``.deb``, ``dpkg-deb``
unpacks only the PDF; ``pdftoppm`` and ``pdftotext`` come from poppler-utils)::

    apt-get install poppler-utils
    python benchmarks/docset.py [--out ~/.cache/ocrserve-docset]

`DOCUMENTS` fixes each document's package, version, path in the package, SHA-256 and pages.
When Debian's current version differs (apt serves only the current one), the script warns and
uses it; a PDF whose SHA-256 differs is warned about too, and the manifest records what was used.

Layout of ``--out`` (the default is ``~/.cache/ocrserve-docset``)::

    debs/<package>_<version>_<arch>.deb
    pdfs/<doc>.pdf                  the document as shipped (gunzipped when shipped as .pdf.gz)
    pages/<doc>-p<NNN>.png          page NNN (1-based) at 150 dpi, RGB
    pages/<doc>-p<NNN>.txt          its ground truth: one text line per line, in reading order
    manifest.json

``manifest.json``: ``{"version", "dpi", "drop_rule", "documents": [...], "pages": [...],
"dropped": [...]}``; a document has ``id, package, version, member, sha256, kind, half,
pages`` (the page numbers asked for); a page has ``id`` (``<doc>-p<NNN>``), ``doc, page,
kind, half`` (``tune`` or ``report``), ``png, txt`` (paths relative to the manifest), ``pdf``
(its document, relative), ``width, height`` (pixels), ``columns`` (text columns found, 1 for
a single column), ``two_column`` (``columns == 2``), ``multi_column`` (``columns >= 2``),
``chars`` (non-space characters of the ground truth) and ``measures`` (the drop rule's
numbers). ``dropped`` lists the pages the rule removed, with their measures and reason.

Halves, by document (every kind on both sides): ``tune`` is for choosing settings, ``report``
for the numbers that are quoted. Do not tune on ``report``.

Ground truth: ``pdftotext -bbox-layout`` for the page, which gives poppler's reading order
(flows, blocks, lines) with each word's box; a line's words are joined by single spaces, lines
by line breaks. Poppler does not always read prose columns one after the other (it may
interleave them), so on a page with columns (`count_columns` >= 2) the lines are put in order
by `reading_order`: running heads and footers first and last, the rest in bands cut at lines
across the columns, each band's columns left to right, poppler's order kept within a column.
Words whose box's centre is off the page are not drawn and are left out.

Drop rule (a page whose text layer is not what is drawn is dropped; measured per page, the
numbers are in the manifest). A page is dropped when any of these holds:

- ``little_text``: fewer than `MIN_CHARS` non-space characters in its layer (a picture page);
- ``unmapped``: more than `MAX_UNMAPPED` of its characters are U+FFFD, private use or control
  characters (glyphs with no Unicode mapping: the layer says something other than the ink);
- ``off_page``: more than `MAX_OFF_PAGE` of its characters lie in words whose box's centre is
  outside the page (text in the layer that is never drawn);
- ``no_ink``: fewer than `MIN_INKED` of its characters lie in words with ink under their box in
  the 150-dpi render (invisible text such as an OCR layer, white or covered text): a word is
  inked when at least `INK_SHARE` of the pixels of its box differ from the box's median colour
  by more than `INK_DELTA` in some channel;
- ``pictures``: raster images cover more than `MAX_PICTURES` of the page (a picture may hold
  text the layer lacks: a screenshot, a scan).

Measured on the 56 pages asked for: kept pages have unmapped <= 0.7 %, off_page 0, inked
>= 99.7 %, pictures <= 10 %, >= 125 characters; one page is dropped (acm-sigconf p. 1, its
teaser photograph covering 65 % of the page). The tests make pages that each clause drops (an
empty page, invisible text, private-use Unicode, a picture). Not detected: glyphs that draw
something other than their Unicode says (a renderer still inks the box).

The set (``DOCUMENTS``): 55 pages from 15 documents, 30 of them (8 documents, 8 two-column
pages) in ``report``; kinds: prose, two-column papers, small print (reference cards), code,
tables, slides, a form-like CV, typewriter text.

Columns (`count_columns`): a gutter is an x between 20 % and 80 % of the page width that at
most `MAX_CROSSING` of the page's characters (in lines spanning it) cross, with at least
`MIN_SIDE` of them in lines wholly on each side, and at least `MIN_SIDE_BY_SIDE` lines on its
left that share height with a line on its right, the lines on each side averaging at least
`MIN_LINE_CHARS` characters (weighted by characters: the length of the line a character is
on; columns of prose, not the cells of a table, a reference card's entries or a slide's labels;
measured on the candidates: two-column paper pages 32-50, reference cards and tables 11-28).
Columns = 1 + the number of separate runs of gutters.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

DPI = 150
DEFAULT_OUT = Path.home() / ".cache" / "ocrserve-docset"

MIN_CHARS = 100
MAX_UNMAPPED = 0.01
MAX_OFF_PAGE = 0.01
MIN_INKED = 0.95
INK_SHARE = 0.02
INK_DELTA = 64
MAX_PICTURES = 0.20

MAX_CROSSING = 0.30
MIN_SIDE = 0.15
MIN_SIDE_BY_SIDE = 3
MIN_LINE_CHARS = 30
MARGIN = 0.08
SPAN_REACH = 0.1

DROP_RULE = (
    f"little_text: < {MIN_CHARS} non-space chars; unmapped: > {MAX_UNMAPPED:.0%} chars U+FFFD, "
    f"private use or control; off_page: > {MAX_OFF_PAGE:.0%} chars in words centred off the "
    f"page; no_ink: < {MIN_INKED:.0%} chars in words with ink (>= {INK_SHARE:.0%} of the box's "
    f"pixels > {INK_DELTA} from its median colour) at {DPI} dpi; pictures: raster images cover "
    f"> {MAX_PICTURES:.0%} of the page"
)


@dataclass(frozen=True)
class Document:
    """One PDF of one Debian package, and the pages of it the set uses."""

    id: str
    package: str
    version: str
    kind: str
    half: str
    pages: tuple[int, ...]
    member: str  # path inside the package
    sha256: str


_TL = "usr/share/doc/texlive-doc/latex/"
# fmt: off
DOCUMENTS: tuple[Document, ...] = (
    # ---- tune
    Document("debian-policy", "debian-policy", "4.6.2.0", "prose", "tune",
             (25, 47, 60, 100, 130), "usr/share/doc/debian-policy/policy.pdf.gz",
             "220f9366d6deb3984e84236f02f04bdd6275d6fe7b5587acd6c689dfeb99020f"),
    Document("ltnews33", "texlive-latex-base-doc", "2022.20230122-3", "two-column", "tune",
             (1, 2, 3, 4), _TL + "base/ltnews33.pdf",
             "aef69a3fc61f8d8171db62c19d4db03d90bcf569ef5cdc6bcb7bfd0a5042e679"),
    Document("elstest-5p", "texlive-publishers-doc", "2022.20230122-4", "two-column", "tune",
             (1, 2, 3), _TL + "elsarticle/elstest-5p.pdf",
             "47641df5dd96df7b8f036f379df2a5ae3138c64be88335e8de802ea2bd1fe572"),
    Document("octave-refcard", "octave-doc", "7.3.0-2", "small print", "tune",
             (1, 2, 3), "usr/share/doc/octave/refcard-a4.pdf",
             "7de62b24c8aa8b82d37e91948cd411c0dae8678233603419de976f0bf9538706"),
    Document("asymptote", "asymptote-doc", "2.85+ds-1", "code", "tune",
             (14, 40, 77, 120), "usr/share/doc/asymptote/asymptote.pdf",
             "e17165321f74a5ec1b884cf20773cc43361df8f7fc707b071debf4ef707de051"),
    Document("charis-features", "fonts-sil-charis", "6.101-1", "tables", "tune",
             (1, 3, 5), "usr/share/doc/fonts-sil-charis/documentation/pdf/features.pdf.gz",
             "e8c55ee4e8af8c67441e2fa17cfe5df950fbfa268e75b6ecc78fbd2f8083d730"),
    Document("screenplay", "texlive-humanities-doc", "2022.20230122-4", "typewriter", "tune",
             (1, 2, 3), _TL + "screenplay-pkg/screenplay-pkg-example.pdf",
             "bd53bb62986f3c181c5663981b5c883de8d995d676a11bb02697e08f25edfacf"),
    # ---- report
    Document("developers-reference", "developers-reference", "12.18", "prose", "report",
             (13, 20, 34, 57, 81), "usr/share/developers-reference/developers-reference.pdf",
             "88e5ac4d15444fd3adb821dc863bd91b820e99a27e65728e74975ab1752652f5"),
    Document("acm-sigconf", "texlive-publishers-doc", "2022.20230122-4", "two-column", "report",
             (1, 2, 3, 4), _TL + "acmart/samples/sample-sigconf.pdf",
             "a4b9040fb79f559ac91656a75645e724fd601899b4a10fbef5fd06aa4c68867f"),
    Document("revtex-auguide", "texlive-publishers-doc", "2022.20230122-4", "two-column", "report",
             (2, 3, 5, 6, 7), _TL + "revtex4-1/auguide/auguide4-1.pdf",
             "f2e34e38c77c831c7faab9d002c23901d1ba862eedb5bd31679039cab76b031c"),
    Document("hyperref-slides", "texlive-latex-base-doc", "2022.20230122-3", "slides", "report",
             (3, 8, 15, 22, 30), _TL + "hyperref/slides.pdf",
             "c269a2e0cc69281acc627fd989cd7f2681e2ec4e10779b2e0bcf0eac39a3f224"),
    Document("pari-refcard", "pari-doc", "2.15.2-1", "small print", "report",
             (1, 2, 3), "usr/share/pari/doc/refcard.pdf",
             "b65dfacf2317b8022f9c650bfe19c5095547dc525d85304b8f310bdc86ed3404"),
    Document("resume-cv", "texlive-xetex", "2022.20230122-3", "form", "report",
             (1, 2), "usr/share/doc/texlive-doc/xelatex/simple-resume-cv/CV.pdf",
             "ba4fd0bd01cdb7e1bbe0e045d829d61f599d07495ea22d7f8e6e4557827bff0e"),
    Document("sbcl", "sbcl-doc", "2:2.2.9-1", "code", "report",
             (20, 45, 70, 110), "usr/share/doc/sbcl/sbcl.pdf.gz",
             "e423ff5cdb7576ad408f7b3d7abf61b568c56665e0b39f800deabe486495d856"),
    Document("fhs", "debian-policy", "4.6.2.0", "tables", "report",
             (10, 18, 30), "usr/share/doc/debian-policy/fhs/fhs-3.0.pdf.gz",
             "53d239e569a2d7b31a74fa09d585368c0f5a164e4624723fa2894660dd10fd23"),
)
# fmt: on


# ----------------------------------------------------------------------------- text layer


Box = tuple[float, float, float, float]
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(frozen=True)
class Word:
    """A word of poppler's layer, in PDF points (origin top-left)."""

    text: str
    x0: float
    y0: float
    x1: float
    y1: float


@dataclass(frozen=True)
class Line:
    """A line of the layer: its words in reading order and their union box."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def chars(self) -> int:
        return sum(len(w.text) for w in self.words)

    @property
    def box(self) -> Box:
        return (
            min(w.x0 for w in self.words),
            min(w.y0 for w in self.words),
            max(w.x1 for w in self.words),
            max(w.y1 for w in self.words),
        )


@dataclass(frozen=True)
class Layer:
    """One page's text layer as poppler reads it."""

    width: float
    height: float
    lines: tuple[Line, ...]


def parse_bbox_layout(xhtml: str) -> Layer:
    """The first page of ``pdftotext -bbox-layout`` output: lines in poppler's reading order."""
    # poppler writes a glyph without Unicode as its code, control characters included, which
    # XML forbids: they become U+FFFD, so that the ``unmapped`` measure counts them.
    root = ET.fromstring(_CONTROL.sub("\ufffd", xhtml))
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    page = root.find(".//h:page", ns)
    if page is None:
        raise ValueError("no <page> in pdftotext -bbox-layout output")
    lines = []
    for line in page.iterfind(".//h:line", ns):
        words = tuple(
            Word(w.text or "", *(float(w.attrib[k]) for k in ("xMin", "yMin", "xMax", "yMax")))
            for w in line.iterfind("h:word", ns)
        )
        if words:
            lines.append(Line(words))
    return Layer(float(page.attrib["width"]), float(page.attrib["height"]), tuple(lines))


def read_layer(pdf: Path, page: int) -> Layer:
    """Page ``page`` (1-based) of ``pdf`` through ``pdftotext -bbox-layout``."""
    out = subprocess.run(
        ["pdftotext", "-bbox-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
        check=True,
        capture_output=True,
    ).stdout.decode("utf-8", "replace")
    return parse_bbox_layout(out)


def _unmapped(ch: str) -> bool:
    o = ord(ch)
    return (
        ch == "\ufffd"
        or 0xE000 <= o <= 0xF8FF
        or o >= 0xF0000
        or (o < 32 and ch not in "\t\n\r")
        or 0x7F <= o < 0xA0
    )


def _on_page(w: Word, layer: Layer) -> bool:
    cx, cy = (w.x0 + w.x1) / 2, (w.y0 + w.y1) / 2
    return 0 <= cx <= layer.width and 0 <= cy <= layer.height


def _inked(pixels: np.ndarray, w: Word, scale: float) -> bool:
    h, wd = pixels.shape[:2]
    x0, x1 = max(0, int(w.x0 * scale) - 1), min(wd, int(np.ceil(w.x1 * scale)) + 1)
    y0, y1 = max(0, int(w.y0 * scale) - 1), min(h, int(np.ceil(w.y1 * scale)) + 1)
    box = pixels[y0:y1, x0:x1].reshape(-1, pixels.shape[2]).astype(np.int16)
    if box.size == 0:
        return False
    far = (np.abs(box - np.median(box, axis=0)) > INK_DELTA).any(axis=1)
    return float(far.mean()) >= INK_SHARE


def measure(layer: Layer, pixels: np.ndarray | None, picture_cover: float) -> dict[str, float]:
    """The drop rule's numbers for a page: its layer, its render (H x W x 3, at ``DPI``) and the
    share of the page that raster images cover."""
    words = [w for line in layer.lines for w in line.words]
    chars = sum(len(w.text) for w in words) or 1
    unmapped = sum(_unmapped(c) for w in words for c in w.text)
    off = sum(len(w.text) for w in words if not _on_page(w, layer))
    if pixels is None:
        inked = 1.0
    else:
        scale = pixels.shape[1] / layer.width
        inked = sum(len(w.text) for w in words if _inked(pixels, w, scale)) / chars
    return {
        "chars": float(sum(len(w.text) for w in words)),
        "unmapped": unmapped / chars,
        "off_page": off / chars,
        "inked": inked,
        "pictures": picture_cover,
    }


def drop_reason(m: dict[str, float]) -> str | None:
    """Why the drop rule removes a page with measures ``m`` (None: it is kept)."""
    if m["chars"] < MIN_CHARS:
        return "little_text"
    if m["unmapped"] > MAX_UNMAPPED:
        return "unmapped"
    if m["off_page"] > MAX_OFF_PAGE:
        return "off_page"
    if m["inked"] < MIN_INKED:
        return "no_ink"
    if m["pictures"] > MAX_PICTURES:
        return "pictures"
    return None


def ground_truth(layer: Layer) -> str:
    """The page's text: lines in reading order (`reading_order`), words centred off the page
    left out."""
    out = []
    for line in reading_order(layer):
        text = " ".join(w.text for w in line.words if _on_page(w, layer))
        if text.strip():
            out.append(text)
    return "\n".join(out)


def reading_order(layer: Layer) -> list[Line]:
    """Poppler's lines; on a page of prose columns, column by column within bands.

    The lines wholly in the top or bottom `MARGIN` of the page (running heads, page numbers,
    footers) come first and last. The rest is cut into bands where a line reaches `SPAN_REACH`
    of the page width into the columns on both sides of a gutter (a title, a wide figure's
    caption: it opens its band; not a page number of a contents list that overhangs the
    gutter). A band's lines come column by column (a line in the column of its centre), left
    to right; poppler's order is kept within a column (a stable sort). Page-wide gaps do not
    cut: headings in both columns often leave gaps at the same height."""
    gutters = find_gutters(layer)
    lines = [line for line in layer.lines if line.chars]
    if not gutters or not lines:
        return list(layer.lines)
    reach = SPAN_REACH * layer.width

    def spans(box: Box) -> bool:
        return any(box[0] < g - reach and box[2] > g + reach for g in gutters)

    cuts = sorted(line.box[1] for line in lines if spans(line.box))

    def key(line: Line) -> tuple[int, int, int]:
        x0, y0, x1, y1 = line.box
        zone = 0 if y1 < MARGIN * layer.height else 2 if y0 > (1 - MARGIN) * layer.height else 1
        band = sum(c <= y0 for c in cuts)
        column = -1 if spans(line.box) else sum(g <= (x0 + x1) / 2 for g in gutters)
        return zone, band, column

    return sorted(lines, key=key)


def _line_length(chars: Sequence[int]) -> float:
    """Characters per line, weighted by characters: the length of the line a character is on
    (an equation's scattered pieces count little)."""
    return sum(c * c for c in chars) / sum(chars) if chars else 0.0


def _is_gutter(boxes: Sequence[tuple[Box, int]], x: float, total: int) -> bool:
    left = [(b, c) for b, c in boxes if b[2] <= x]
    right = [(b, c) for b, c in boxes if b[0] >= x]
    crossing = sum(c for b, c in boxes if b[0] < x < b[2])
    lchars, rchars = sum(c for _, c in left), sum(c for _, c in right)
    if crossing > MAX_CROSSING * total or min(lchars, rchars) < MIN_SIDE * total:
        return False
    lengths = _line_length([c for _, c in left]), _line_length([c for _, c in right])
    if min(lengths) < MIN_LINE_CHARS:
        return False  # the cells of a table, a reference card's entries, a slide's labels
    side_by_side = sum(any(a[1] < b[3] and b[1] < a[3] for b, _ in right) for a, _ in left)
    return side_by_side >= MIN_SIDE_BY_SIDE


def find_gutters(layer: Layer) -> list[float]:
    """The x of each gutter between prose columns (the middle of each run of gutter positions;
    see the module docstring)."""
    boxes = [(line.box, line.chars) for line in layer.lines if line.chars]
    total = sum(c for _, c in boxes)
    runs: list[list[float]] = []
    for x in np.arange(0.2 * layer.width, 0.8 * layer.width, 1.0):
        if not total or not _is_gutter(boxes, float(x), total):
            continue
        if runs and x - runs[-1][-1] <= 1.5:
            runs[-1].append(float(x))
        else:
            runs.append([float(x)])
    return [(run[0] + run[-1]) / 2 for run in runs]


def count_columns(layer: Layer) -> int:
    """Text columns of the page (see the module docstring); 0 for a page without text."""
    if not any(line.chars for line in layer.lines):
        return 0
    return 1 + len(find_gutters(layer))


def picture_cover(pdf: Path, page: int) -> float:
    """Share of the page that raster image objects cover (their boxes, clipped to the page)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    doc = pdfium.PdfDocument(str(pdf))
    try:
        p = doc[page - 1]
        x0, y0, x1, y1 = p.get_bbox()
        grid = np.zeros((100, 100), dtype=bool)
        for obj in p.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=8):
            left, bottom, right, top = obj.get_bounds()
            cols = slice(
                int(max(0, (left - x0) / (x1 - x0)) * 100),
                int(np.ceil(min(1, (right - x0) / (x1 - x0)) * 100)),
            )
            rows = slice(
                int(max(0, (bottom - y0) / (y1 - y0)) * 100),
                int(np.ceil(min(1, (top - y0) / (y1 - y0)) * 100)),
            )
            grid[rows, cols] = True
        return float(grid.mean())
    finally:
        doc.close()


def render(pdf: Path, page: int, stem: Path, dpi: int = DPI) -> Path:
    """``pdftoppm`` page ``page`` of ``pdf`` to ``stem``.png."""
    subprocess.run(
        [
            "pdftoppm",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-png",
            "-singlefile",
            str(pdf),
            str(stem),
        ],
        check=True,
    )
    return stem.with_suffix(".png")


# ----------------------------------------------------------------------------- building


def _warn(msg: str) -> None:
    print(f"docset: warning: {msg}", file=sys.stderr, flush=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def download(package: str, version: str, debs: Path) -> tuple[Path, str]:
    """The package's ``.deb`` in ``debs`` (``apt-get download``; the pinned version if apt
    still has it, else the current one, with a warning) and the version used."""
    debs.mkdir(parents=True, exist_ok=True)
    have = sorted(debs.glob(f"{package}_*.deb"))
    for deb in have:
        if _deb_version(deb) == version:
            return deb, version
    tried = subprocess.run(
        ["apt-get", "download", "-qq", f"{package}={version}"], cwd=debs, capture_output=True
    )
    if tried.returncode != 0:
        _warn(f"{package} {version} is not in apt's lists; using the current version")
        if have:
            return have[-1], _deb_version(have[-1])
        subprocess.run(["apt-get", "download", "-qq", package], cwd=debs, check=True)
    for deb in sorted(debs.glob(f"{package}_*.deb")):
        used = _deb_version(deb)
        if used != version:
            _warn(f"{package}: version {used}, the set was made from {version}")
        return deb, used
    raise RuntimeError(f"apt-get download {package} left no .deb in {debs}")


def _deb_version(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
    ).stdout.strip()


def extract(deb: Path, member: str, dest: Path) -> Path:
    """``member`` of the package (gunzipped if it ends in .gz) written to ``dest``."""
    tar_bytes = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        names = {m.name.lstrip("./"): m for m in tar.getmembers()}
        if member not in names:
            raise FileNotFoundError(f"{member} is not in {deb.name}")
        f = tar.extractfile(names[member])
        if f is None:
            raise FileNotFoundError(f"{member} in {deb.name} is not a regular file")
        data = f.read()
    if member.endswith(".gz"):
        data = gzip.decompress(data)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(data)
    return dest


def build_page(pdf: Path, page: int, stem: Path) -> dict[str, Any]:
    """Render one page, read its layer, measure it: the manifest's fields (``drop`` is the
    rule's reason or None)."""
    from PIL import Image

    png = render(pdf, page, stem)
    layer = read_layer(pdf, page)
    with Image.open(png) as im:
        pixels = np.asarray(im.convert("RGB"))
    m = measure(layer, pixels, picture_cover(pdf, page))
    columns = count_columns(layer)
    text = ground_truth(layer)
    stem.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    return {
        "width": int(pixels.shape[1]),
        "height": int(pixels.shape[0]),
        "columns": columns,
        "two_column": columns == 2,
        "multi_column": columns >= 2,
        "chars": sum(not c.isspace() for c in text),
        "measures": {k: round(v, 4) for k, v in m.items()},
        "drop": drop_reason(m),
    }


def build(out: Path, documents: Sequence[Document] = DOCUMENTS) -> dict[str, Any]:
    """Build the set under ``out``; returns the manifest (also written to manifest.json)."""
    for tool in ("pdftoppm", "pdftotext", "apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise SystemExit(f"docset: {tool} not found (apt-get install poppler-utils)")
    (out / "pages").mkdir(parents=True, exist_ok=True)
    docs, pages, dropped = [], [], []
    for d in documents:
        deb, version = download(d.package, d.version, out / "debs")
        pdf = extract(deb, d.member, out / "pdfs" / f"{d.id}.pdf")
        sha = _sha256(pdf)
        if d.sha256 and sha != d.sha256:
            _warn(f"{d.id}: sha256 {sha[:12]}..., the set was made from {d.sha256[:12]}...")
        docs.append({**asdict(d), "version": version, "sha256": sha, "pinned": asdict(d)})
        for n in d.pages:
            pid = f"{d.id}-p{n:03d}"
            info = build_page(pdf, n, out / "pages" / pid)
            entry = {
                "id": pid, "doc": d.id, "page": n, "kind": d.kind, "half": d.half,
                "png": f"pages/{pid}.png", "txt": f"pages/{pid}.txt", "pdf": f"pdfs/{d.id}.pdf",
                **info,
            }  # fmt: skip
            reason = entry.pop("drop")
            if reason:
                dropped.append({**entry, "reason": reason})
            else:
                pages.append(entry)
            print(f"{pid}: {reason or 'kept'} {entry['measures']} columns={entry['columns']}")
    manifest = {
        "version": 1, "dpi": DPI, "drop_rule": DROP_RULE,
        "documents": docs, "pages": pages, "dropped": dropped,
    }  # fmt: skip
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def load(out: Path = DEFAULT_OUT, half: str | None = None) -> list[dict[str, Any]]:
    """The kept pages of a built set (``half``: ``tune``, ``report`` or None for all), each with
    ``png``, ``txt`` and ``pdf`` made absolute and the ground truth as ``text``."""
    path = out / "manifest.json"
    if not path.exists():
        raise SystemExit(f"no document set at {out}: run python benchmarks/docset.py --out {out}")
    manifest = json.loads(path.read_text())
    pages = []
    for p in manifest["pages"]:
        if half and p["half"] != half:
            continue
        p = {**p, **{k: str(out / p[k]) for k in ("png", "txt", "pdf")}}
        p["text"] = Path(p["txt"]).read_text(encoding="utf-8")
        pages.append(p)
    return pages


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="cache folder (%(default)s)")
    ap.add_argument("--only", nargs="*", help="build only these document ids")
    args = ap.parse_args(argv)
    docs = [d for d in DOCUMENTS if not args.only or d.id in args.only]
    manifest = build(args.out.expanduser(), docs)
    pages = manifest["pages"]
    for half in ("tune", "report"):
        mine = [p for p in pages if p["half"] == half]
        print(
            f"{half}: {len(mine)} pages from {len({p['doc'] for p in mine})} documents, "
            f"{sum(p['two_column'] for p in mine)} two-column"
        )
    print(f"dropped: {len(manifest['dropped'])}; manifest: {args.out / 'manifest.json'}")


if __name__ == "__main__":
    main()
