"""The bundled PP-OCRv6 models in process: demo images, rendered words, synthetic maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ocrserve.errors import ModelNotFound
from ocrserve.imaging import decode
from ocrserve.ppocr import BUILTIN_MODELS, DEFAULT_CONFIG, build_builtin
from ocrserve.ppocr.det import (
    DBSettings,
    PPOCRDetector,
    db_boxes,
    normalize,
    order_clockwise,
    resize_for_det,
)
from ocrserve.ppocr.e2e import PPOCREndToEnd, crop_quad, reading_order
from ocrserve.ppocr.rec import ctc_decode, ctc_read, read_dictionary
from tests.conftest import DEMO


def test_registry_lists_names_on_error() -> None:
    with pytest.raises(ModelNotFound, match="ocr, ppocr_det, ppocr_rec"):
        build_builtin("nope")
    assert set(BUILTIN_MODELS) == {"ppocr_det", "ppocr_rec", "ocr"}


def test_resize_rule_multiples_of_32() -> None:
    img = np.zeros((1500, 2000, 3), np.uint8)
    assert resize_for_det(img, DBSettings()).shape[:2] == (
        704,
        960,
    )  # round(720 / 32) = 22 (round half to even)
    small = np.zeros((50, 70, 3), np.uint8)
    assert resize_for_det(small, DBSettings()).shape[:2] == (64, 64)


def test_bundled_resize_raises_small_images_and_caps_large_ones() -> None:
    bundled = DBSettings(
        **{k: v for k, v in DEFAULT_CONFIG["det"].items() if k not in ("mean", "std")}
    )
    # 640 x 480: the shorter side is raised to 736 (981 -> 992 after rounding to 32).
    assert resize_for_det(np.zeros((480, 640, 3), np.uint8), bundled).shape[:2] == (736, 992)
    # 2560 x 1440: no raise (1440 >= 736), but the longer side is capped at 2000 (-> 1984).
    assert resize_for_det(np.zeros((1440, 2560, 3), np.uint8), bundled).shape[:2] == (1120, 1984)
    # 1024 x 1024 stays.
    assert resize_for_det(np.zeros((1024, 1024, 3), np.uint8), bundled).shape[:2] == (1024, 1024)
    # A long strip: raising its shorter side would pass 2000 px, so the longer side is capped.
    assert resize_for_det(np.zeros((100, 1500, 3), np.uint8), bundled).shape[:2] == (128, 1984)


def test_order_clockwise() -> None:
    pts = np.array([[10, 10], [0, 5], [0, 0], [10, 0]], np.float32)
    assert order_clockwise(pts).tolist() == [[0, 0], [10, 0], [10, 10], [0, 5]]


def test_db_boxes_on_synthetic_map() -> None:
    prob = np.zeros((100, 200), np.float32)
    prob[20:40, 30:150] = 0.9
    boxes = db_boxes(prob, 200, 400, DBSettings())
    assert len(boxes) == 1
    box, score = boxes[0]
    assert score == pytest.approx(0.9, abs=1e-3)
    # The map is half the image size; unclip grows the 120 x 20 region on every side.
    assert box[0][0] < 60 and box[0][1] < 40 and box[2][0] > 298 and box[2][1] > 78


def test_box_score_threshold_replaces_box_thresh() -> None:
    """The request option sets DB's own box threshold: under the model's it finds boxes the
    model would drop, over it fewer."""
    prob = np.zeros((100, 200), np.float32)
    prob[20:40, 30:150] = 0.9
    prob[60:80, 30:150] = 0.5  # a faint line, under box_thresh 0.6
    settings = DBSettings()
    assert len(db_boxes(prob, 200, 400, settings)) == 1
    detector = PPOCRDetector.__new__(PPOCRDetector)
    detector.settings = settings
    assert detector.settings_for(None) is settings
    low = detector.settings_for({"box_score_threshold": 0.4})
    assert low.box_thresh == 0.4 and len(db_boxes(prob, 200, 400, low)) == 2
    high = detector.settings_for({"box_score_threshold": 0.95})
    assert db_boxes(prob, 200, 400, high) == []


def test_ctc_read_gives_character_scores() -> None:
    charset = ["<blank>", "a", "b"]
    probs = np.full((1, 4, 3), 0.1, np.float32)
    for t, (c, p) in enumerate([(1, 0.8), (0, 0.9), (2, 0.6), (2, 0.7)]):
        probs[0, t, c] = p
    ((text, score, chars),) = ctc_read(probs, charset)
    assert text == "ab" and chars == pytest.approx([0.8, 0.6])
    assert score == pytest.approx(0.7)


def test_ctc_decode_merges_repeats_and_blanks() -> None:
    charset = ["<blank>", "a", "b"]
    steps = [1, 1, 0, 1, 2, 2, 0]
    probs = np.full((1, len(steps), 3), 0.05, np.float32)
    for t, c in enumerate(steps):
        probs[0, t, c] = 0.9
    assert ctc_decode(probs, charset) == [("aab", pytest.approx(0.9))]
    assert ctc_decode(np.eye(3, dtype=np.float32)[[0, 0]][None], charset) == [("", 0.0)]


def test_reading_order_same_line_left_to_right() -> None:
    quads = [np.array([[x, y]] * 4, np.float32) for x, y in [(300, 12), (10, 100), (20, 10)]]
    assert reading_order(quads) == [2, 0, 1]


def test_crop_quad_rectifies() -> None:
    img = np.zeros((100, 100, 3), np.uint8)
    img[20:40, 10:90] = 255
    quad = np.array([[10, 20], [90, 20], [90, 40], [10, 40]], np.float32)
    crop = crop_quad(img, quad)
    assert crop.shape == (20, 80, 3) and crop.mean() > 200


@pytest.fixture(scope="module")
def det_image() -> np.ndarray:
    return decode((DEMO / "demo_text_det.jpg").read_bytes(), 10**8)


def test_recognizer_reads_demo_word() -> None:
    rec = build_builtin("ppocr_rec", 1)
    img = decode((DEMO / "demo_text_recog.jpg").read_bytes(), 10**8)
    (res,) = rec.predict([img])
    assert res["text"] == (DEMO / "demo_text_recog.txt").read_text().strip()


def test_detector_batch_equals_single(det_image: np.ndarray) -> None:
    det = build_builtin("ppocr_det", 1)
    one = det.predict([det_image])
    two = det.predict([det_image, det_image[:, ::-1].copy()])
    assert two[0] == one[0] and len(two) == 2


def test_upside_down_lines_are_turned_before_recognition(det_image: np.ndarray) -> None:
    e2e = build_builtin("ocr", 1)
    assert isinstance(e2e, PPOCREndToEnd) and e2e.classifier is not None
    crops = [crop_quad(det_image, quad) for quad, _ in e2e.detector.detect(det_image)]
    upright = [t for t, _ in e2e.recognizer.recognize(crops)]
    flipped = [np.ascontiguousarray(c[::-1, ::-1]) for c in crops]
    assert [t for t, _ in e2e.recognizer.recognize(flipped)] != upright
    texts = [t for t, _ in e2e.recognizer.recognize(e2e.classifier.upright(flipped))]
    assert texts == upright


def test_end_to_end_reads_demo_in_reading_order(det_image: np.ndarray) -> None:
    e2e = build_builtin("ocr", 1)
    lines = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
    (res,) = e2e.predict([det_image])
    assert [r["text"] for r in res["result"]] == [line["text"] for line in lines]


def test_sessions_do_not_spin() -> None:
    from ocrserve.onnx_session import create_session
    from ocrserve.ppocr.weights import weights_path

    session = create_session(weights_path("cls"), 2)
    options = session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2


def test_very_wide_crops_are_squeezed_to_100_heights() -> None:
    import numpy as np

    from ocrserve.ppocr.rec import PPOCRRecognizer

    rec = PPOCRRecognizer(threads=1)
    widths: list[int] = []
    session = rec.session

    class Recording:
        def run(self, names: object, feeds: dict[str, np.ndarray]) -> object:
            widths.append(next(iter(feeds.values())).shape[-1])
            return session.run(names, feeds)  # type: ignore[arg-type]

    rec.session = Recording()  # type: ignore[assignment]
    crops = [np.full((20, 10_000, 3), 255, np.uint8), np.full((48, 480, 3), 255, np.uint8)]
    assert len(rec.recognize(crops)) == 2
    assert widths == [4800]  # one batch, as wide as the squeezed crop


#: Fonts with CJK glyphs that Debian packages install (PIL's default font has none).
CJK_FONTS = [
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # fonts-droid-fallback
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
]


def _render(text: str, font_path: str, size: int = 40) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path, size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGB", (right - left + 24, bottom - top + 20), (255, 255, 255))
    ImageDraw.Draw(image).text((12 - left, 10 - top), text, font=font, fill=(20, 20, 20))
    return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])


@pytest.mark.skipif(
    not any(Path(f).is_file() for f in CJK_FONTS),
    reason="no CJK font on this machine (e.g. apt-get install fonts-droid-fallback)",
)
@pytest.mark.parametrize("word", ["光学字符识别", "こんにちは"])
def test_recognizer_reads_chinese_and_japanese(word: str) -> None:
    font = next(f for f in CJK_FONTS if Path(f).is_file())
    rec = build_builtin("ppocr_rec", 1)
    (res,) = rec.predict([_render(word, font)])
    assert res["text"] == word and res["score"] > 0.9


def test_v6_dictionary_covers_chinese_japanese_and_latin_but_not_cyrillic() -> None:
    from ocrserve.ppocr.rec import PPOCRRecognizer

    chars = set(PPOCRRecognizer(threads=1).charset)
    assert len(chars) == 18708 + 2  # the blank and the space
    assert {"光", "識", "こ", "カ", "é", "ß", "ł", "Ω"} <= chars
    assert not {"Ж", "한", "ع", "א", "ก"} & chars


def test_dictionary_file_lines(tmp_path: Path) -> None:
    path = tmp_path / "keys.txt"
    path.write_bytes("a\r\n \n\u2028\nb".encode())
    assert read_dictionary(path) == ["a", " ", "\u2028", "b"]


def test_det_normalize_is_the_per_pixel_formula() -> None:
    """``(x / 255 - mean) / std`` in float32, channels first, bit for bit (it is a table)."""
    img = np.random.default_rng(11).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    scale = np.float32(1.0 / 255.0) / np.asarray(std, np.float32)
    shift = np.asarray(mean, np.float32) / np.asarray(std, np.float32)
    expected = (img.astype(np.float32) * scale - shift).transpose(2, 0, 1)[None]
    got = normalize(img, mean, std)
    assert got.shape == (1, 3, 40, 64) and got.flags.c_contiguous
    assert np.array_equal(got, expected)
