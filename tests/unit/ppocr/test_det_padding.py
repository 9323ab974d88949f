"""The border the PP-OCR detector adds before detection, and boxes mapped back through it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from ocrserve.ppocr.det import DBSettings, PPOCRDetector, db_boxes, pad_for_det


def test_the_border_has_the_edge_colour_even_where_text_touches_it() -> None:
    img = np.full((40, 200, 3), (30, 180, 220), np.uint8)
    img[:, :8] = 0  # a dark glyph touching the left, top and bottom edges
    img[:4, 100:110] = 0
    padded, pad = pad_for_det(img, DBSettings(pad_ratio=0.25, pad_max=32))
    assert pad == 10 and padded.shape == (60, 220, 3)
    assert (padded[:pad] == (30, 180, 220)).all() and (padded[:, -pad:] == (30, 180, 220)).all()
    assert (padded[pad:-pad, pad:-pad] == img).all()


def test_the_border_is_capped_and_can_be_off() -> None:
    img = np.zeros((1000, 1500), np.uint8)  # grey images too
    padded, pad = pad_for_det(img, DBSettings(pad_ratio=0.25, pad_max=32, pad_below=0))
    assert pad == 32 and padded.shape == (1064, 1564)
    same, none = pad_for_det(img, DBSettings(pad_ratio=0.0, pad_below=0))
    assert same is img and none == 0
    _, uncapped = pad_for_det(img, DBSettings(pad_ratio=0.1, pad_max=0, pad_below=0))
    assert uncapped == 100


def test_only_small_images_get_the_border_by_default() -> None:
    """Crops and strips (shorter side under 256 px) do; whole pages keep their detection."""
    assert pad_for_det(np.zeros((255, 900, 3), np.uint8), DBSettings())[1] == 32
    assert pad_for_det(np.zeros((40, 300, 3), np.uint8), DBSettings())[1] == 10
    page = np.zeros((256, 900, 3), np.uint8)
    same, pad = pad_for_det(page, DBSettings())
    assert same is page and pad == 0


def test_db_boxes_map_through_the_border_and_clip_to_the_image() -> None:
    """A map of a 200 x 400 image with 50 px of border on each side, at half size."""
    prob = np.zeros((150, 250), np.float32)
    prob[45:65, 40:160] = 0.9  # 10 px above the image's top edge (in map pixels: 25 down)
    plain = db_boxes(prob, 300, 500, DBSettings(unclip_ratio=0.5))  # as if no border
    [(box, score)] = db_boxes(prob, 200, 400, DBSettings(unclip_ratio=0.5), border=(50.0, 50.0))
    assert score == pytest.approx(0.9, abs=1e-3)
    [(unpadded, _)] = plain
    # The same box, 50 px up and left, clipped to the image.
    assert box[:, 0].tolist() == np.clip(unpadded[:, 0] - 50, 0, 399).tolist()
    assert box[:, 1].tolist() == np.clip(unpadded[:, 1] - 50, 0, 199).tolist()
    assert box[:, 0].min() >= 0 and box[:, 1].max() <= 199


class _MapSession:
    """An ONNX session stand-in: a DB map with one line where the image has dark pixels."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def run(self, _: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        [x] = feeds.values()
        self.shapes.append(x.shape)
        dark = (x[0].mean(axis=0) < -1.5).astype(np.float32)  # normalised black
        return [dark[None, None] * 0.95]


def _detector(settings: DBSettings) -> tuple[PPOCRDetector, _MapSession]:
    detector = PPOCRDetector.__new__(PPOCRDetector)
    session = _MapSession()
    detector.settings, detector.session, detector._input = settings, session, "x"
    return detector, session


@pytest.mark.parametrize("max_side", [None, 300])
def test_detect_gives_boxes_in_the_images_pixels(max_side: int | None) -> None:
    settings = DBSettings(limit_type="min", limit_side_len=64, max_side_len=2000,
                          box_thresh=0.5, unclip_ratio=0.5, pad_ratio=0.25, pad_max=32)  # fmt: skip
    img = np.full((120, 600, 3), 255, np.uint8)
    img[20:100, 0:600] = 0  # a "line" from the left edge to the right one
    detector, session = _detector(settings)
    [(box, _)] = detector.detect(img, max_side=max_side)
    assert session.shapes[0][2] > 120 * (max_side or 600) / 600  # the border was there
    xs, ys = box[:, 0], box[:, 1]
    assert xs.min() <= 4 and xs.max() >= 595  # the whole width, clipped to the image
    assert 0 < ys.min() < 20 and 100 < ys.max() < 119  # rows 20-99, unclipped by ~17 px
    off, _ = _detector(replace(settings, pad_ratio=0.0))
    [(unpadded, _)] = off.detect(img, max_side=max_side)
    assert np.abs(unpadded - box).max() <= 6  # where the unpadded map puts it
