"""ALTO 4 XML (https://www.loc.gov/standards/alto/, schema version 4.4): the answer as the
layout and text archives, Kraken, eScriptorium and Transkribus exchange.

``MeasurementUnit`` is ``pixel``: positions are in the pixels the model saw (a PDF page at its
rendering resolution). Each page is a ``Page`` (``PHYSICAL_IMG_NR`` its number) whose
``PrintSpace`` spans it; each block (`layout.blocks`) a ``TextBlock`` (``ROTATION`` when its
lines are not level); each line a ``TextLine``; each word a ``String`` (``CONTENT``, ``WC``
its confidence 0-1) with an ``SP`` between two words. Word boxes are split from the line's box
by the characters' share of the line (`layout.words`): the answer has no character positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median

from ocrserve.documents.outputs.layout import Box, Line, Page, blocks, words, xml_text
from ocrserve.version import __version__

__all__ = ["MEDIA_TYPE", "NAMESPACE", "SCHEMA_LOCATION", "alto_page", "write_alto"]

MEDIA_TYPE = "application/alto+xml"
NAMESPACE = "http://www.loc.gov/standards/alto/ns-v4#"
SCHEMA_LOCATION = "http://www.loc.gov/standards/alto/v4/alto-4-4.xsd"
#: Blocks whose lines turn less than this many degrees are written level (no ``ROTATION``).
LEVEL_DEGREES = 0.5

_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="{ns}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      xsi:schemaLocation="{ns} {schema}" SCHEMAVERSION="4.4">
 <Description>
  <MeasurementUnit>pixel</MeasurementUnit>
  <sourceImageInformation>
   <fileName>{file}</fileName>
  </sourceImageInformation>
  <Processing ID="ocr_1">
   <processingCategory>contentGeneration</processingCategory>
   <processingSoftware>
    <softwareName>ocrserve</softwareName>
    <softwareVersion>{version}</softwareVersion>
   </processingSoftware>
  </Processing>
 </Description>
 <Layout>
"""
_TAIL = """ </Layout>
</alto>
"""


def _n(value: float) -> str:
    """A position or size in pixels, to one decimal."""
    return f"{round(value, 1):g}"


def _geometry(box: Box) -> str:
    x0, y0, x1, y1 = box
    return (
        f'HPOS="{_n(x0)}" VPOS="{_n(y0)}" '
        f'WIDTH="{_n(max(0.0, x1 - x0))}" HEIGHT="{_n(max(0.0, y1 - y0))}"'
    )


def _line(line: Line, page: int, n: int) -> list[str]:
    out = [f'     <TextLine ID="line_{page}_{n}" {_geometry(line.box)}>']
    previous: Box | None = None
    for k, word in enumerate(words(line), start=1):
        if previous is not None:  # the gap between the two words, along the line
            x0, x1 = previous[2], max(previous[2], word.box[0])
            gap = (x0, min(previous[1], word.box[1]), x1, max(previous[3], word.box[3]))
            out.append(f"      <SP {_geometry(gap)}/>")
        wc = f"{max(0.0, min(1.0, word.confidence)):.3f}"
        out.append(
            f'      <String ID="string_{page}_{n}_{k}" {_geometry(word.box)} '
            f'WC="{wc}" CONTENT="{xml_text(word.text, quote=True)}"/>'
        )
        previous = word.box
    out.append("     </TextLine>")
    return out


def alto_page(page: Page) -> str:
    """One ``Page`` element."""
    n = page.number
    size = f'WIDTH="{page.width}" HEIGHT="{page.height}"'
    out = [f'  <Page ID="page_{n}" PHYSICAL_IMG_NR="{n}" {size}>']
    out.append(f'   <PrintSpace HPOS="0" VPOS="0" {size}>')
    line_no = 0
    for b, block in enumerate(blocks(page.lines), start=1):
        angle = median(line.angle for line in block.lines)
        rotation = f' ROTATION="{round(angle % 360, 1):g}"' if abs(angle) >= LEVEL_DEGREES else ""
        out.append(f'    <TextBlock ID="block_{n}_{b}" {_geometry(block.box)}{rotation}>')
        for line in block.lines:
            line_no += 1
            out.extend(_line(line, n, line_no))
        out.append("    </TextBlock>")
    out.append("   </PrintSpace>")
    out.append("  </Page>")
    return "\n".join(out) + "\n"


def write_alto(pages: Sequence[Page], file_name: str = "") -> bytes:
    """The pages as one ALTO document (UTF-8); ``file_name`` names the source image."""
    head = _HEAD.format(
        ns=NAMESPACE, schema=SCHEMA_LOCATION, file=xml_text(file_name), version=__version__
    )
    return (head + "".join(alto_page(page) for page in pages) + _TAIL).encode("utf-8")
