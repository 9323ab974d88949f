"""hOCR 1.2 (https://kba.github.io/hocr-spec/1.2/): the answer as XHTML that Tesseract's
readers take (OCRmyPDF, hocr-tools, hocrjs).

Each page is an ``ocr_page`` (``bbox`` of the page in pixels, ``ppageno`` from 0, ``scan_res``
when the resolution is known); each block (`layout.blocks`) an ``ocr_carea`` holding one
``ocr_par``; each line an ``ocr_line`` (``bbox``, ``textangle`` when it is not level,
``x_wconf``); each word an ``ocrx_word`` (``bbox``, ``x_wconf`` 0-100). Word boxes are split
from the line's box by the characters' share of the line (`layout.words`): the answer has no
character positions. The document is well-formed XML (OCRmyPDF parses it as XML).
"""

from __future__ import annotations

from collections.abc import Sequence

from ocrserve.documents.outputs.layout import Box, Line, Page, blocks, words, xml_text
from ocrserve.version import __version__

__all__ = ["CAPABILITIES", "MEDIA_TYPE", "hocr_page", "write_hocr"]

MEDIA_TYPE = "text/html; charset=utf-8"
#: What the document holds (the ``ocr-capabilities`` meta).
CAPABILITIES = "ocr_page ocr_carea ocr_par ocr_line ocrx_word ocrp_wconf"
#: A line turned less than this many degrees is written level (no ``textangle``).
LEVEL_DEGREES = 0.5

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
    "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>{title}</title>
  <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/>
  <meta name="ocr-system" content="ocrserve {version}"/>
  <meta name="ocr-capabilities" content="{capabilities}"/>
  <meta name="ocr-number-of-pages" content="{count}"/>
 </head>
 <body>
"""
_TAIL = """ </body>
</html>
"""


def _bbox(box: Box) -> str:
    x0, y0, x1, y1 = (round(v) for v in box)
    return f"bbox {x0} {y0} {max(x1, x0)} {max(y1, y0)}"


def _wconf(confidence: float) -> int:
    return max(0, min(100, round(confidence * 100)))


def _line(line: Line, page: int, n: int) -> list[str]:
    title = _bbox(line.box)
    if abs(line.angle) >= LEVEL_DEGREES:
        title += f"; textangle {round(line.angle % 360, 1):g}"
    title += f"; x_wconf {_wconf(line.confidence)}"
    out = [f'     <span class="ocr_line" id="line_{page}_{n}" title="{title}">']
    for k, word in enumerate(words(line), start=1):
        wtitle = f"{_bbox(word.box)}; x_wconf {_wconf(word.confidence)}"
        out.append(
            f'      <span class="ocrx_word" id="word_{page}_{n}_{k}" title="{wtitle}">'
            f"{xml_text(word.text)}</span>"
        )
    out.append("     </span>")
    return out


def hocr_page(page: Page, dpi: float | None = None) -> str:
    """One ``ocr_page`` div."""
    title = f"bbox 0 0 {page.width} {page.height}; ppageno {page.number - 1}"
    if dpi:
        title += f"; scan_res {round(dpi)} {round(dpi)}"
    n = page.number
    out = [f'  <div class="ocr_page" id="page_{n}" title="{title}">']
    line_no = 0
    for b, block in enumerate(blocks(page.lines), start=1):
        box = _bbox(block.box)
        out.append(f'   <div class="ocr_carea" id="block_{n}_{b}" title="{box}">')
        out.append(f'    <p class="ocr_par" id="par_{n}_{b}" title="{box}">')
        for line in block.lines:
            line_no += 1
            out.extend(_line(line, n, line_no))
        out.append("    </p>")
        out.append("   </div>")
    out.append("  </div>")
    return "\n".join(out) + "\n"


def write_hocr(pages: Sequence[Page], dpi: float | None = None, title: str = "") -> bytes:
    """The pages as one hOCR document (UTF-8); ``dpi`` is the pages' resolution, if known."""
    head = _HEAD.format(
        title=xml_text(title), version=__version__, capabilities=CAPABILITIES, count=len(pages)
    )
    body = "".join(hocr_page(page, dpi) for page in pages)
    return (head + body + _TAIL).encode("utf-8")
