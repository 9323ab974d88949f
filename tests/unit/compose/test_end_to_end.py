"""Composed end-to-end archives from the bundled PP-OCRv6 detector and recognizer: the crops,
the recognizer's batching (calls counted on a page of many lines) and the refusals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.loader import load_predictor
from ocrserve.archives.mar import extract_archive, read_manifest
from ocrserve.compose.composer import compose_archive
from ocrserve.compose.end_to_end import (
    ComposedEndToEnd,
    line_quad,
    lines_and_crops,
    text_and_score,
)
from ocrserve.errors import ArchiveError
from ocrserve.ppocr.weights import weights_path

WORDS = ["invoice", "total", "amount", "paid", "number", "order", "street", "city", "date"]


def quiet(message: str) -> None:
    """No progress lines in the test output."""


def text_page(lines: int, columns: int = 1) -> tuple[np.ndarray, list[str]]:
    """A white page with ``lines`` printed lines of black text (BGR), in ``columns`` columns
    read top to bottom, then left to right."""
    font = ImageFont.load_default(size=22)
    texts = [
        f"{WORDS[n % len(WORDS)]} {n:02d} {WORDS[(n * 5 + 2) % len(WORDS)]}" for n in range(lines)
    ]
    rows = math.ceil(lines / columns)
    page = Image.new("RGB", (520 * columns, 40 + 34 * rows), "white")
    draw = ImageDraw.Draw(page)
    for n, text in enumerate(texts):
        column, row = divmod(n, rows)
        draw.text((520 * column + 30 + (n % 3) * 40, 20 + 34 * row), text, fill="black", font=font)
    return np.ascontiguousarray(np.asarray(page)[:, :, ::-1]), texts


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("parts")
    for name in ("ppocr_det", "ppocr_rec", "ocr"):
        build_bundled_archive(name, folder)
    return folder


def _load(mar: Path, tmp: Path) -> Any:
    dest = tmp / mar.stem
    extract_archive(mar, dest)
    return load_predictor(dest, threads=1)


def test_line_quad_orders_quads_and_cuts_polygons_by_their_min_area_rectangle() -> None:
    quad, score = line_quad([50, 10, 50, 30, 10, 30, 10, 10, 0.9])
    assert quad.tolist() == [[10, 10], [50, 10], [50, 30], [10, 30]] and score == 0.9
    # A 6-vertex polygon around the band x 0..100, y 0..20: its rectangle.
    quad, _ = line_quad([0, 0, 50, 2, 100, 0, 100, 20, 50, 18, 0, 20, 0.5])
    np.testing.assert_allclose(quad, [[0, 0], [100, 0], [100, 20], [0, 20]], atol=1e-4)
    image = np.zeros((40, 120, 3), np.uint8)
    ((_, _, crop),) = lines_and_crops(image, [[0, 0, 50, 2, 100, 0, 100, 20, 50, 18, 0, 20, 0.5]])
    assert crop.shape == (20, 100, 3)


def test_text_and_score_averages_per_character_scores() -> None:
    assert text_and_score({"text": "ab", "score": 0.5}) == ("ab", 0.5)
    assert text_and_score({"text": "ab", "score": [0.5, 1.0]}) == ("ab", 0.75)


def test_many_lines_take_ceil_lines_over_batch_recognizer_calls(
    store: Path, tmp_path: Path
) -> None:
    out = compose_archive(tmp_path, det=store / "ppocr_det.mar", rec=store / "ppocr_rec.mar",
                          model_name="pp", rec_batch=8, progress=quiet)  # fmt: skip
    manifest = read_manifest(out)
    assert manifest.task == "e2e" and manifest.ocrserve["kind"] == "e2e"
    assert manifest.ocrserve["parts"]["det"]["model"] == "ppocr_det"
    composed = _load(out, tmp_path)
    assert isinstance(composed, ComposedEndToEnd) and composed.rec_batch == 8
    calls: list[int] = []
    predict = composed.recognizer.predict

    def counted(crops: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        calls.append(len(crops))
        return predict(crops)

    composed.recognizer.predict = counted  # type: ignore[method-assign]
    image, texts = text_page(36)
    result = composed.predict([image])[0]["result"]
    assert len(result) >= 30
    assert len(calls) == math.ceil(len(result) / 8) and max(calls) <= 8
    # Reading order: top to bottom; most lines read back as printed.
    tops = [min(line["box"][1::2]) for line in result]
    assert tops == sorted(tops)
    assert sum(line["text"] in texts for line in result) >= 0.8 * len(texts)
    # The same crops recognised one at a time by the part alone give the same texts.
    det = composed.detector.predict([image])[0]["boundary_result"]
    alone = [predict([crop])[0] for _, _, crop in lines_and_crops(image, det)]
    assert [line["text"] for line in result] == [a["text"] for a in alone]


def test_refused_compositions_say_why(store: Path, tmp_path: Path) -> None:
    cases = [
        ({"det": store / "ppocr_rec.mar", "rec": store / "ppocr_rec.mar"},
         "--det", "is text recognizer (textrecog); --det takes a text detector archive"),
        ({"det": store / "ppocr_det.mar", "rec": store / "ppocr_det.mar"},
         "--rec", "is text detector (textdet); --rec takes a text recognizer archive"),
        ({"det": store / "ocr.mar", "rec": store / "ppocr_rec.mar"},
         "--det", "is end-to-end OCR (e2e)"),
        ({"det": tmp_path / "missing.mar", "rec": store / "ppocr_rec.mar"},
         "--det", "missing.mar: no such file"),
        ({"det": store / "ppocr_det.mar", "rec": Path(__file__)},
         "--rec", "not a readable model archive"),
    ]  # fmt: skip
    for parts, option, reason in cases:
        with pytest.raises(ArchiveError) as info:
            compose_archive(tmp_path, **parts, model_name="bad", progress=quiet)  # type: ignore[arg-type]
        assert info.value.message.startswith(option) and reason in info.value.message, info.value
    assert not (tmp_path / "bad.mar").exists()
    with pytest.raises(ArchiveError, match="angle classifier x.onnx: no such file"):
        compose_archive(tmp_path, det=store / "ppocr_det.mar", rec=store / "ppocr_rec.mar",
                        cls=tmp_path / "x.onnx", model_name="bad", progress=quiet)  # fmt: skip


def test_angle_classifier_goes_into_cls(store: Path, tmp_path: Path) -> None:
    out = compose_archive(tmp_path, det=store / "ppocr_det.mar", rec=store / "ppocr_rec.mar",
                          cls=weights_path("cls"), model_name="pp_cls", progress=quiet)  # fmt: skip
    section = read_manifest(out).ocrserve
    assert section["parts"]["cls"]["file"] == "cls/cls.onnx"
    assert f"; cls {weights_path('cls').name} (sha256 " in section["weights"]
    composed = _load(out, tmp_path)
    assert composed.classifier is not None
    image, texts = text_page(4)
    assert [line["text"] for line in composed.predict([image])[0]["result"]] == texts
