"""`ocrserve.compare.pictures`: the side-by-side picture, the JSON report and the HTML index."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrserve.compare import pictures
from ocrserve.compare.matching import Tolerances, compare_results
from ocrserve.compare.pictures import PictureNames, draw_comparison, font, write_reports

TOL = Tolerances()
IMAGE = np.full((200, 300, 3), 240, dtype=np.uint8)


def _det(*xs: float) -> dict[str, object]:
    return {"boundary_result": [[x, 20, x + 60, 20, x + 60, 40, x, 40, 0.9] for x in xs]}


def _red_pixels(path: Path) -> int:
    arr = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((arr[..., 0] > 200) & (arr[..., 1] < 60) & (arr[..., 2] < 60)).sum())


def test_agreeing_picture_has_no_red(tmp_path: Path) -> None:
    comp = compare_results("a.png", "textdet", _det(10, 120), _det(10, 120), TOL)
    out = draw_comparison(IMAGE, comp, tmp_path / "a.png")
    img = Image.open(out)
    assert img.format == "PNG" and img.width > 2 * 300
    assert _red_pixels(out) == 0


def test_differences_are_red(tmp_path: Path) -> None:
    comp = compare_results("a.png", "textdet", _det(10, 120), _det(10, 200), TOL)
    out = draw_comparison(IMAGE, comp, tmp_path / "a.png")
    assert not comp.ok and _red_pixels(out) > 1000
    # The title bar says so in red; both panels mark the unmatched polygons.
    arr = np.asarray(Image.open(out).convert("RGB"))
    assert tuple(arr[2, 2]) == pictures.RED


@pytest.mark.parametrize("task", ["textrecog", "e2e"])
def test_text_is_rendered(task: str, tmp_path: Path) -> None:
    if task == "textrecog":
        local, served = {"text": "serving", "score": 0.99}, {"text": "serv1ng", "score": 0.99}
        image = np.full((32, 100, 3), 200, dtype=np.uint8)
    else:
        line = {"box": [10, 20, 70, 20, 70, 40, 10, 40], "box_score": 0.8, "text_score": 0.9}
        local = {"result": [{**line, "text": "HELLO"}]}
        served = {"result": [{**line, "text": "HELL0"}]}
        image = IMAGE
    comp = compare_results("r.png", task, local, served, TOL)
    out = draw_comparison(image, comp, tmp_path / "r.png")
    assert Image.open(out).height > image.shape[0] and _red_pixels(out) > 0


def test_font_falls_back_to_pillows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert font(14) is not None
    monkeypatch.setattr(pictures, "FONT_PATHS", ())
    font.cache_clear()
    try:
        assert pictures.find_font() is None
        assert font(15).getbbox("Ag")[3] > 0
    finally:
        font.cache_clear()


def test_picture_names_are_unique(tmp_path: Path) -> None:
    names = PictureNames(tmp_path)
    assert names.next(Path("a/x.jpg")).name == "x.png"
    assert names.next(Path("b/x.png")).name == "x-2.png"
    assert names.next(Path("index.jpg")).name == "index.png"


def test_reports(tmp_path: Path) -> None:
    good = compare_results("imgs/<good>.png", "textdet", _det(10), _det(10), TOL)
    good.picture = "good.png"
    bad = compare_results("imgs/bad.png", "textdet", _det(10), _det(14), TOL)
    header = {
        "model_name": "dbnet",
        "local_model": ["dbnet.mar"],
        "inference_address": "h:1",
        "tolerances": {"vertex_px": 0.5, "score": 1e-4, "match_iou": 0.5},
    }
    index = write_reports(tmp_path, header, [good, bad])
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["ok"] is False and doc["model_name"] == "dbnet"
    assert doc["summary"] == {"images": 2, "agree": 1, "differ": 1}
    assert [i["ok"] for i in doc["images"]] == [True, False]
    assert doc["images"][1]["reasons"][0].startswith("local #0 / served #0: vertices differ")
    page = index.read_text()
    assert index.name == "index.html" and "1 of 2 images agree" in page
    assert '<img src="good.png"' in page and "&lt;good&gt;.png" in page and "<good>" not in page
    assert "DIFFER" in page and 'href="report.json"' in page
