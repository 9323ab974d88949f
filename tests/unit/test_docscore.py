"""The document benchmark's scorer (`benchmarks/docscore.py`) on hand-made cases, and the
document set's drop rule and column count (`benchmarks/docset.py`) on small PDFs made here
(poppler's pdftoppm and pdftotext read them, as they read the Debian documents; no download)."""

from __future__ import annotations

import importlib.util
import random
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from PIL import Image

from tests.text_layer_pdfs import (
    TO_UNICODE,
    Line,
    PdfPage,
    Picture,
    identity_font,
    letter_page,
    pdf,
)

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


docscore = _load("docscore")
docset = _load("docset")


def _naive(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


# ----------------------------------------------------------------------------- scorer


def test_levenshtein_matches_the_textbook_table_beyond_one_machine_word() -> None:
    rng = random.Random(7)
    for _ in range(300):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 150)))
        b = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 150)))
        assert docscore.levenshtein(a, b) == _naive(a, b)
    assert docscore.levenshtein(["the", "cat"], ["the", "hat", "sat"]) == 2


def test_best_match_end_finds_the_pattern_inside_the_text() -> None:
    assert docscore.best_match_end("world", "hello world again") == (0, 11)
    assert docscore.best_match_end("wrld", "hello world again") == (1, 11)
    assert docscore.best_match_end("xyz", "") == (3, 0)


def test_cer_and_wer_known_values() -> None:
    assert docscore.cer("kitten", "sitting") == pytest.approx(3 / 6)
    assert docscore.cer("abc", "abd") == pytest.approx(1 / 3)
    assert docscore.cer("abc", "abc") == 0.0
    assert docscore.cer("abc", "") == 1.0
    assert docscore.cer("", "") == 0.0 and docscore.cer("", "x") == 1.0
    assert docscore.wer("the cat sat down", "the hat sat") == pytest.approx(2 / 4)
    assert docscore.order_cer is docscore.cer


def test_normalisation_unifies_ligatures_quotes_dashes_and_spaces() -> None:
    assert docscore.normalise("\ufb01nd the \ufb02ow \ufb03x") == "find the flow ffix"
    assert (
        docscore.normalise("\u201cquoted\u201d \u2018x\u2019 \u00abg\u00bb") == '"quoted" \'x\' "g"'
    )
    assert docscore.normalise("a\u2013b\u2014c\u2212d\u2010e") == "a-b-c-d-e"
    assert docscore.normalise("  two\u00a0 words\n\tand\u200b more ") == "two words and more"
    assert docscore.normalise("co\u00adoperate") == "cooperate"
    assert docscore.cer("\u201cE\ufb03cient\u201d \u2014 yes", '"Efficient" - yes') == 0.0
    # case and accents are kept: those are errors
    assert docscore.cer("Caf\u00e9", "cafe") == pytest.approx(2 / 4)
    assert docscore.normalise_lines("one \n\n  two  lines\n") == ["one", "two lines"]


def test_bag_of_words_f1() -> None:
    assert docscore.bag_of_words_f1("a b c d", "a b x") == pytest.approx(4 / 7)
    assert docscore.bag_of_words_f1("a b", "b a") == 1.0
    assert docscore.bag_of_words_f1("a a b", "a b b") == pytest.approx(2 / 3)
    assert docscore.bag_of_words_f1("a", "") == 0.0
    assert docscore.bag_of_words_f1("", "") == 1.0


REF = "The first column starts here\nand it goes on a while\nThe second column is here\nand ends"


def test_order_sensitive_and_order_free_cer_on_swapped_lines() -> None:
    lines = REF.split("\n")
    swapped = "\n".join(lines[2:] + lines[:2])  # the right column read first
    assert docscore.cer(REF, swapped) > 0.3
    assert docscore.order_free_cer(REF, swapped) == 0.0
    assert docscore.order_free_wer(REF, swapped) == 0.0
    assert docscore.bag_of_words_f1(REF, swapped) == 1.0
    # errors still count when the order is forgiven
    typo = swapped.replace("column", "colunm")
    in_order = "\n".join(lines).replace("column", "colunm")
    assert docscore.order_free_cer(REF, typo) == pytest.approx(docscore.cer(REF, in_order))
    assert docscore.order_free_cer(REF, typo) > 0
    # lines interleaved across the gutter (read row by row) cost in order, not order-free
    rows = "\n".join([lines[0], lines[2], lines[1], lines[3]])
    assert docscore.order_free_cer(REF, rows) == 0.0 < docscore.cer(REF, rows)
    # never above the plain CER
    rng = random.Random(3)
    for _ in range(20):
        hyp = "\n".join(rng.sample(lines, k=rng.randint(1, 4)))
        assert docscore.order_free_cer(REF, hyp) <= docscore.cer(REF, hyp)


def test_score_page_has_every_measure() -> None:
    scores = docscore.score_page(REF, REF)
    assert scores == {
        "cer": 0.0,
        "wer": 0.0,
        "order_free_cer": 0.0,
        "order_free_wer": 0.0,
        "bow_f1": 1.0,
    }


# ----------------------------------------------------------------------------- docset

needs_poppler = pytest.mark.skipif(
    shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None,
    reason="poppler-utils (pdftoppm, pdftotext) not installed",
)

LEFT = [f"left column line {k:02d} of some prose text here" for k in range(14)]
RIGHT = [f"right column line {k:02d} with more prose in it" for k in range(14)]


def _column_page() -> PdfPage:
    lines = [Line(t, 56, 720 - 14 * k, 9) for k, t in enumerate(LEFT)]
    lines += [Line(t, 320, 720 - 14 * k, 9) for k, t in enumerate(RIGHT)]
    return PdfPage(lines)


def _headed_page() -> PdfPage:
    """A running head at the top right, a title across both columns, then the columns."""
    title = "A title that runs across both of the columns of this page, from margin to margin"
    lines = [Line("Running head 7", 480, 760, 9), Line(title, 56, 700, 12)]
    lines += [Line(t, 56, 670 - 14 * k, 9) for k, t in enumerate(LEFT)]
    lines += [Line(t, 320, 670 - 14 * k, 9) for k, t in enumerate(RIGHT)]
    return PdfPage(lines)


def _single_page() -> PdfPage:
    text = [f"a single column of prose running across the page, line {k:02d}" for k in range(16)]
    return PdfPage([Line(t, 72, 720 - 14 * k, 11) for k, t in enumerate(text)])


def _table_page() -> PdfPage:
    """Labels and values side by side: two columns of short cells, not of prose."""
    cells = [Line(f"key{k:02d}", 72, 720 - 14 * k) for k in range(16)]
    cells += [Line(f"value {k:02d}", 320, 720 - 14 * k) for k in range(16)]
    return PdfPage(cells)


def _build(tmp_path: Path, name: str, page: PdfPage) -> dict[str, object]:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(pdf([page]))
    info = docset.build_page(path, 1, tmp_path / name)
    info["text"] = (tmp_path / f"{name}.txt").read_text()
    return info


@needs_poppler
def test_two_columns_are_found_and_read_column_by_column(tmp_path: Path) -> None:
    info = _build(tmp_path, "two", _column_page())
    assert info["columns"] == 2 and info["two_column"] and info["drop"] is None
    assert str(info["text"]).split("\n")[:28] == LEFT + RIGHT
    headed = _build(tmp_path, "headed", _headed_page())
    assert headed["columns"] == 2
    lines = str(headed["text"]).split("\n")
    assert lines[0] == "Running head 7" and lines[1].startswith("A title that runs")
    assert lines[2:30] == LEFT + RIGHT
    assert _build(tmp_path, "one", _single_page())["columns"] == 1
    assert _build(tmp_path, "table", _table_page())["columns"] == 1


@needs_poppler
def test_pages_whose_layer_is_what_is_drawn_are_kept(tmp_path: Path) -> None:
    info = _build(tmp_path, "letter", letter_page())
    assert info["drop"] is None
    assert info["measures"]["inked"] == 1.0  # type: ignore[index]
    assert "Dear Ms. Lef\u00e8vre," in str(info["text"])


#: A /ToUnicode map that sends the codes a-z to private-use code points (as symbol and
#: subset fonts often do): the layer holds no letters.
PRIVATE_USE = TO_UNICODE.replace(b"<0061> <007a> <0061>", b"<0061> <007a> <E061>").replace(
    b"1 beginbfchar <0078> <D835DC31> endbfchar\n", b""
)


def _private_use_font(objects: list[bytes]) -> bytes:
    return identity_font(objects, PRIVATE_USE)


def _lines(font: str = "F1", mode: int = 0) -> list[Line]:
    return [Line("abcdefgh ijkl mnop", 72, 700 - 16 * k, font=font, mode=mode) for k in range(9)]


DROPPED = {
    "empty": (PdfPage([]), "little_text"),
    # an OCR layer's text mode over nothing: the words have no ink
    "invisible": (PdfPage(_lines(mode=3)), "no_ink"),
    # glyphs drawn, their Unicode private use
    "unmapped": (PdfPage(_lines("CIDP"), fonts={"CIDP": _private_use_font}), "unmapped"),
    # a picture over most of the page (text in it that the layer lacks)
    "pictures": (
        PdfPage(_lines(), [Picture(Image.new("RGB", (400, 300), "grey"), (0, 0, 612, 400))]),
        "pictures",
    ),
}


@needs_poppler
@pytest.mark.parametrize("name", sorted(DROPPED))
def test_the_drop_rule(tmp_path: Path, name: str) -> None:
    page, reason = DROPPED[name]
    assert _build(tmp_path, name, page)["drop"] == reason
    kept = _build(tmp_path, f"{name}-kept", PdfPage(_lines()))
    assert kept["drop"] is None and kept["measures"]["inked"] == 1.0  # type: ignore[index]


@needs_poppler
def test_text_off_the_page_is_not_ground_truth(tmp_path: Path) -> None:
    page = PdfPage([*_lines(), Line("far away words", 700, 500), Line("below it", 72, -40)])
    info = _build(tmp_path, "off", page)
    assert info["drop"] is None
    assert "far away" not in str(info["text"]) and "below" not in str(info["text"])


def test_off_page_words_are_measured() -> None:
    on = [docset.Word("inside", 10, 10, 40, 20)]
    off = [docset.Word("outside", 700, 10, 740, 20)]
    layer = docset.Layer(612, 792, (docset.Line(tuple(on * 10)), docset.Line(tuple(off))))
    m = docset.measure(layer, None, 0.0)
    assert m["off_page"] == pytest.approx(7 / 67)
    assert docset.drop_reason(m) == "little_text"  # 67 characters
    layer = docset.Layer(612, 792, (docset.Line(tuple(on * 100)), docset.Line(tuple(off))))
    assert docset.drop_reason(docset.measure(layer, None, 0.0)) == "off_page"
    assert docset.ground_truth(layer).split("\n") == [" ".join(["inside"] * 100)]


def test_drop_reason_thresholds() -> None:
    ok = {"chars": 500.0, "unmapped": 0.0, "off_page": 0.0, "inked": 1.0, "pictures": 0.0}
    assert docset.drop_reason(ok) is None
    assert docset.drop_reason({**ok, "chars": 99.0}) == "little_text"
    assert docset.drop_reason({**ok, "unmapped": 0.02}) == "unmapped"
    assert docset.drop_reason({**ok, "off_page": 0.02}) == "off_page"
    assert docset.drop_reason({**ok, "inked": 0.9}) == "no_ink"
    assert docset.drop_reason({**ok, "pictures": 0.3}) == "pictures"


def test_documents_avoid_the_held_back_packages() -> None:
    held = {
        "r-doc-pdf", "python-reportlab-doc", "ghostscript-doc", "texlive-latex-recommended-doc",
        "auto-multiple-choice-doc-pdf", "ubuntu-packaging-guide-pdf", "impressive",
        "docbook-xsl-doc-pdf", "shared-mime-info",
    }  # fmt: skip
    docs = docset.DOCUMENTS
    assert not held & {d.package for d in docs}
    assert len(docs) >= 8 and sum(len(d.pages) for d in docs) >= 40
    assert {d.half for d in docs} == {"tune", "report"}
    both = {"prose", "two-column", "small print", "code", "tables"}
    for half in ("tune", "report"):  # the main kinds on both sides
        assert both <= {d.kind for d in docs if d.half == half}
    assert all(len(d.sha256) == 64 for d in docs)
