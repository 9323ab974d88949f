"""Text that touches the image's edge (a tight crop) is found and read by the bundled models
(issue 38, point 4: PP-OCRv6's detector found nothing on such crops before the detector padded
the image), in process and through a real server."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from ocrserve.ppocr import build_builtin
from ocrserve.predictor import Predictor
from tests.conftest import ServerProcess, running

pytestmark = pytest.mark.slow

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
#: Short words at small sizes: the crops the unpadded detector missed (none of these was found).
WORDS = [("edge", 20), ("edge", 24), ("Total", 20), ("Total", 24)]


def tight_crop(text: str, size: int) -> np.ndarray:
    """``text`` drawn dark on white, cut to its ink: glyphs touch all four edges (BGR)."""
    try:
        font = ImageFont.truetype(FONT, size)
    except OSError:
        pytest.skip(f"no DejaVu Sans at {FONT} (apt-get install -y fonts-dejavu-core)")
    canvas = Image.new("RGB", (size * (len(text) + 2), size * 3), "white")
    ImageDraw.Draw(canvas).text((size, size), text, fill=(20, 20, 20), font=font)
    pixels = np.asarray(canvas)
    ys, xs = np.nonzero(pixels.min(axis=2) < 160)
    crop = pixels[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1, ::-1]
    return np.ascontiguousarray(crop)


@pytest.fixture(scope="module")
def ocr() -> Predictor:
    return build_builtin("ocr")


@pytest.fixture(scope="module")
def det() -> Predictor:
    return build_builtin("ppocr_det")


def _xyxy(flat: list[float]) -> tuple[float, float, float, float]:
    xs, ys = flat[0:8:2], flat[1:8:2]
    return min(xs), min(ys), max(xs), max(ys)


def _covers(box: tuple[float, float, float, float], h: int, w: int) -> bool:
    """The box lies in the image and spans most of it (the crop is all text)."""
    x0, y0, x1, y1 = box
    inside = 0 <= x0 and 0 <= y0 and x1 <= w - 1 and y1 <= h - 1
    return inside and (x1 - x0) >= 0.8 * (w - 1) and (y1 - y0) >= 0.6 * (h - 1)


@pytest.mark.parametrize(("text", "size"), WORDS)
def test_ocr_reads_a_tight_crop(ocr: Predictor, text: str, size: int) -> None:
    img = tight_crop(text, size)
    [answer] = ocr.predict([img])
    assert [line["text"] for line in answer["result"]] == [text]
    assert _covers(_xyxy(answer["result"][0]["box"]), *img.shape[:2])


@pytest.mark.parametrize(("text", "size"), WORDS)
def test_ppocr_det_finds_a_tight_crop(det: Predictor, text: str, size: int) -> None:
    img = tight_crop(text, size)
    [answer] = det.predict([img])
    [box] = answer["boundary_result"]
    assert _covers(_xyxy(box), *img.shape[:2]), box


def test_a_text_line_cut_from_the_demo_image_and_a_scaled_down_crop(ocr: Predictor) -> None:
    """A line of demo/demo_text_det.jpg cut to its ink; and ``max_side``, which scales the
    image before the border is added, still gives boxes in the image's own pixels."""
    from tests.conftest import DEMO

    demo = cv2.imread(str(DEMO / "demo_text_det.jpg"))
    line = demo[605:632, 560:893]  # "Books and Music", its box in demo_text_det.json
    grey = line.min(axis=2)
    ys, xs = np.nonzero(grey < np.median(grey) - 60)
    crop = np.ascontiguousarray(line[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    [answer] = ocr.predict([crop])
    assert [r["text"] for r in answer["result"]] == ["Books and Music"]
    img = cv2.resize(tight_crop("Total", 24), None, fx=4, fy=4)
    [answer] = ocr.predict([img], {"max_side": 64})
    assert [r["text"] for r in answer["result"]] == ["Total"]
    assert _covers(_xyxy(answer["result"][0]["box"]), *img.shape[:2])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("edge"), "--models", "ocr", "ppocr_det")
    yield from running(server)


def test_a_tight_crop_through_the_server(served: ServerProcess) -> None:
    img = tight_crop("edge", 24)
    body = cv2.imencode(".png", img)[1].tobytes()
    with httpx.Client(base_url=served.url, timeout=120) as client:
        ocr = client.put("/predictions/ocr", content=body)
        det = client.put("/predictions/ppocr_det", content=body)
    assert ocr.status_code == 200 and det.status_code == 200, (ocr.text, det.text)
    assert [r["text"] for r in ocr.json()["result"]] == ["edge"]
    [box] = det.json()["boundary_result"]
    assert _covers(_xyxy(box), *img.shape[:2])
