"""A TrueType font without glyphs, for invisible text layers: every character is drawn with
one empty glyph half an em wide, so that text of ``n`` characters at size ``s`` spans exactly
``n * s / 2`` (times the horizontal scaling), and nothing is ever painted.

This is the idea of Tesseract's GlyphLessFont (its ``pdf.ttf``), written here table by table
(the OpenType spec's layouts: https://learn.microsoft.com/typography/opentype/spec/). The PDF
side (`font_objects`) is a Type0 font with ``Identity-H`` codes: the writer numbers the
characters it uses (CIDs from 1), ``/CIDToGIDMap`` sends them all to the empty glyph, and
``/ToUnicode`` gives each its text, so that extraction, search and copy return the text.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable

__all__ = [
    "ADVANCE",
    "ASCENT",
    "DESCENT",
    "FONT_NAME",
    "UNITS",
    "cid_to_gid_map",
    "glyphless_ttf",
    "to_unicode",
]

FONT_NAME = "GlyphLessFont"
#: Font units per em; every glyph's advance; the ascent and descent (ascent - descent = 1 em).
UNITS = 1000
ADVANCE = 500
ASCENT = 800
DESCENT = -200


def _checksum(data: bytes) -> int:
    data += b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(data) // 4}I", data)) & 0xFFFFFFFF


def _name_table() -> bytes:
    names = {1: FONT_NAME, 2: "Regular", 4: FONT_NAME, 6: FONT_NAME}
    records, strings = b"", b""
    for name_id, text in names.items():
        raw = text.encode("utf-16-be")
        records += struct.pack(">6H", 3, 1, 0x409, name_id, len(raw), len(strings))
        strings += raw
    return struct.pack(">3H", 0, len(names), 6 + len(records)) + records + strings


def glyphless_ttf() -> bytes:
    """The font file: two empty glyphs (``.notdef`` and the one every CID maps to)."""
    glyphs = 2
    head = struct.pack(
        ">IIIIHHqqhhhhHHhhh", 0x00010000, 0x00010000, 0, 0x5F0F3CF5, 0b1011, UNITS,
        0, 0, 0, DESCENT, ADVANCE, ASCENT, 0, 8, 2, 0, 0,
    )  # fmt: skip
    hhea = struct.pack(
        ">IhhhHhhhhhhhhhhhH", 0x00010000, ASCENT, DESCENT, 0, ADVANCE, 0, 0, 0,
        1, 0, 0, 0, 0, 0, 0, 0, glyphs,
    )  # fmt: skip
    tables = {
        # format 4, one segment (the end marker): no character maps to a glyph by itself
        b"cmap": struct.pack(">4HI", 0, 1, 3, 1, 12)
        + struct.pack(">7H", 4, 24, 0, 2, 2, 0, 0)
        + struct.pack(">5H", 0xFFFF, 0, 0xFFFF, 1, 0),
        b"glyf": b"",
        b"head": head,
        b"hhea": hhea,
        b"hmtx": struct.pack(">hh", ADVANCE, 0) * glyphs,
        b"loca": struct.pack(">H", 0) * (glyphs + 1),
        # maxp 1.0: no points, contours or instructions; maxZones 2
        b"maxp": struct.pack(">IH13H", 0x00010000, glyphs, 0, 0, 0, 0, 2, *[0] * 8),
        b"name": _name_table(),
        b"post": struct.pack(">IIhhIIIII", 0x00030000, 0, -100, 50, 1, 0, 0, 0, 0),
    }
    count = len(tables)
    entry_selector = count.bit_length() - 1
    search_range = 16 << entry_selector
    out = struct.pack(">IHHHH", 0x00010000, count, search_range, entry_selector,
                      count * 16 - search_range)  # fmt: skip
    offset = len(out) + 16 * count
    directory, body = b"", b""
    for tag in sorted(tables):
        data = tables[tag]
        directory += struct.pack(">4sIII", tag, _checksum(data), offset + len(body), len(data))
        body += data + b"\0" * (-len(data) % 4)
    font = bytearray(out + directory + body)
    head_at = offset + body.index(head)
    adjustment = (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF
    struct.pack_into(">I", font, head_at + 8, adjustment)  # head's checkSumAdjustment
    return bytes(font)


def _utf16(text: str) -> str:
    return text.encode("utf-16-be").hex().upper()


def to_unicode(chars: Iterable[str]) -> bytes:
    """The ``/ToUnicode`` CMap of ``chars``, the k-th character being CID k + 1 (2 bytes)."""
    entries = [f"<{k:04X}> <{_utf16(ch)}>" for k, ch in enumerate(chars, start=1)]
    blocks = []
    for i in range(0, len(entries), 100):  # at most 100 mappings a block
        chunk = entries[i : i + 100]
        blocks.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")


def cid_to_gid_map(count: int) -> bytes:
    """``/CIDToGIDMap`` data sending CIDs 1 to ``count`` to glyph 1 (CID 0 to ``.notdef``),
    Flate-compressed."""
    return zlib.compress(b"\0\0" + b"\0\1" * count)
