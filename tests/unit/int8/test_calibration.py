from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrserve.errors import ArchiveError
from ocrserve.int8.calibration import line_crops, read_pages, record_feeds
from ocrserve.ppocr.det import PPOCRDetector
from tests.tiny_ppocr import tiny_det


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "pages"
    folder.mkdir()
    img = np.full((120, 200, 3), 235, np.uint8)
    img[40:70, 30:170] = 15
    Image.fromarray(img).save(folder / "b.png")
    Image.fromarray(img[:, ::-1]).save(folder / "a.jpg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_pages_are_the_images_of_the_folder_by_name(tmp_path: Path) -> None:
    pages = read_pages(_folder(tmp_path))
    assert [name for name, _ in pages] == ["a.jpg", "b.png"]
    assert pages[1][1].shape == (120, 200, 3) and pages[1][1].dtype == np.uint8
    with pytest.raises(ArchiveError, match="no images in it"):
        read_pages(tmp_path / "pages" / ".." / "pages", limit=0)
    with pytest.raises(ArchiveError, match="not a folder"):
        read_pages(tmp_path / "missing")
    (tmp_path / "pages" / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ArchiveError, match="cannot read broken.png"):
        read_pages(tmp_path / "pages")


def test_feeds_are_what_the_predictor_hands_its_network(tmp_path: Path) -> None:
    detector = PPOCRDetector(1, model=tiny_det(tmp_path / "det.onnx"))
    page = read_pages(_folder(tmp_path))[1][1]
    session = detector.session
    answers, feeds = record_feeds(detector, lambda: detector.predict([page, page]))
    assert detector.session is session  # put back
    assert len(feeds) == 2 and answers == detector.predict([page, page])
    (x,) = feeds[0].values()
    assert x.shape[0] == 1 and x.shape[1] == 3 and x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0
    crops = line_crops(detector, [page])
    (crop,) = crops  # the dark bar (30 x 140) and the margin DB's unclipping adds around it
    assert 30 <= crop.shape[0] < 80 and 140 <= crop.shape[1] < 200 and crop.min() < 50
