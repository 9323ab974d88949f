"""PDFs and multi-page TIFFs made in code for the tests: text pages drawn with Pillow, and
hostile PDFs written object by object (an encrypted one, a 10,000-page one, one with a huge
page, one that carries JavaScript), since no writer on PyPI makes them on purpose."""

from __future__ import annotations

import io
import zlib
from typing import Any

from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "encrypted_pdf",
    "heavy_page_pdf",
    "huge_page_pdf",
    "javascript_pdf",
    "many_pages_pdf",
    "pdf_of",
    "raw_pdf",
    "text_page",
    "tiff_of",
]


def text_page(text: str, size: tuple[int, int] = (640, 240)) -> Image.Image:
    """A white page with ``text`` in black, large enough for the bundled models to read."""
    img = Image.new("RGB", size, "white")
    font = ImageFont.load_default(size=56)  # Pillow's bundled FreeType font: no system fonts
    ImageDraw.Draw(img).text((40, 80), text, fill="black", font=font)
    return img


def _save(images: list[Image.Image], fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    images[0].save(buf, fmt, save_all=True, append_images=images[1:], **options)
    return buf.getvalue()


def pdf_of(images: list[Image.Image], dpi: int = 150) -> bytes:
    """A PDF with one page per image (Pillow's PDF writer), an image pixel per ``1/dpi`` inch."""
    return _save([img.copy() for img in images], "PDF", resolution=float(dpi))


def tiff_of(images: list[Image.Image]) -> bytes:
    """A multi-page TIFF with one page per image."""
    return _save([img.copy() for img in images], "TIFF", compression="tiff_lzw")


def raw_pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of ``objects`` (numbered from 1; object 1 must be the catalog) with a correct
    cross-reference table, and ``trailer`` entries added to the trailer dictionary."""
    out = b"%PDF-1.7\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s >>\n" % (len(objects) + 1, trailer)
    return out + b"startxref\n%d\n%%%%EOF\n" % xref


def _text_stream(text: str) -> bytes:
    content = b"BT /F1 48 Tf 40 60 Td (%s) Tj ET" % text.encode("latin-1")
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)


def _one_page(media_box: bytes = b"[0 0 400 160]", catalog_extra: bytes = b"") -> list[bytes]:
    """Catalog, page tree, one page showing "HELLO" in Helvetica, its content and font."""
    return [
        b"<< /Type /Catalog /Pages 2 0 R %s >>" % catalog_extra,
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox %s /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>" % media_box,
        _text_stream("HELLO"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def encrypted_pdf() -> bytes:
    """A one-page PDF under the standard security handler whose user password is not empty:
    its keys (/O, /U) match no empty password, so a reader must ask for one."""
    encrypt = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -4 >>" % (b"1f" * 32, b"2e" * 32)
    doc_id = b"<00112233445566778899aabbccddeeff>"
    return raw_pdf(_one_page() + [encrypt], b"/Encrypt 6 0 R /ID [%s %s]" % (doc_id, doc_id))


def many_pages_pdf(count: int = 10_000) -> bytes:
    """A small PDF whose page tree lists the same tiny page ``count`` times."""
    kids = b" ".join([b"3 0 R"] * count)
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
    ])  # fmt: skip


def huge_page_pdf(points: int = 100_000) -> bytes:
    """One page of ``points`` x ``points`` points (at 150 dpi, 208,334 pixels a side)."""
    return raw_pdf(_one_page(b"[0 0 %d %d]" % (points, points)))


def javascript_pdf() -> bytes:
    """The "HELLO" page with JavaScript run on opening (/OpenAction) and as a document-level
    script (/Names /JavaScript): a reader with a JavaScript engine would run both."""
    script = b"<< /S /JavaScript /JS (app.alert('pwned'); this.exportDataObject({}); ) >>"
    objects = _one_page(catalog_extra=b"/OpenAction 6 0 R /Names << /JavaScript 7 0 R >>")
    return raw_pdf(objects + [script, b"<< /Names [(boot) 6 0 R] >>"])


def link_script_pdf() -> bytes:
    """The "HELLO" page with a link annotation whose action is JavaScript, its names written
    with ``#xx`` escapes (``/J#53``, ``/J#61vaScript``): no document-level script at all."""
    objects = _one_page()
    objects[2] = objects[2].replace(b"/Contents", b"/Annots [6 0 R] /Contents")
    annot = (b"<< /Type /Annot /Subtype /Link /Rect [0 0 100 40] "
             b"/A << /S /J#61vaScript /J#53 (app.alert(1)) >> >>")  # fmt: skip
    return raw_pdf(objects + [annot])


def object_stream_script_pdf() -> bytes:
    """The "HELLO" page plus a Flate-compressed object stream (/Type /ObjStm) holding a
    JavaScript action: the script is out of sight of a scan of the file's bytes."""
    action = b"<< /S /JavaScript /JS (app.alert(1)) >>"
    body = zlib.compress(b"7 0 " + action)
    stream = (
        b"<< /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
    )
    return raw_pdf(_one_page() + [stream % (len(body), body)])


def script_bytes_in_a_stream_pdf() -> bytes:
    """The "HELLO" page plus an uncompressed stream whose bytes spell ``/JS (`` and
    ``/JavaScript``: data, not a dictionary, so not a script."""
    data = b"\x00\xff/JS (x) /JavaScript \x00"
    return raw_pdf(_one_page() + [b"<< /Length %d >>\nstream\n%s\nendstream" % (len(data), data)])


def heavy_page_pdf(strokes: int = 200_000) -> bytes:
    """One page whose content is ``strokes`` separately stroked lines: slow to render (seconds),
    small to send (a few MB)."""
    content = b"1 w\n" + b"".join(
        b"%d %d m %d %d l S\n" % (i % 97, i % 89, 400 - i % 83, 160 - i % 79)
        for i in range(strokes)
    )
    stream = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
    return raw_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 160] /Contents 4 0 R >>",
        stream,
    ])  # fmt: skip
