"""The public Python API of ``ocrserve`` (docs/python-api.md), used as the docs show it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2

import ocrserve
from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.mar import extract_archive
from tests.conftest import DEMO, REPO


def test_all_names_are_there() -> None:
    for name in ocrserve.__all__:
        assert getattr(ocrserve, name) is not None, name
    assert issubclass(ocrserve.ArchiveError, ocrserve.OcrServeError)
    assert ocrserve.MMOCRPredictor.__module__ == "ocrserve.mmocr.mmocr_predictor"


def test_load_predictor_reads_an_extracted_archive(tmp_path: Path) -> None:
    archive = build_bundled_archive("ppocr_rec", tmp_path)
    extract_archive(archive, tmp_path / "ppocr_rec")
    predictor = ocrserve.load_predictor(tmp_path / "ppocr_rec", threads=1)
    assert isinstance(predictor, ocrserve.Predictor)
    [result] = predictor.predict([cv2.imread(str(DEMO / "demo_text_recog.jpg"))])
    assert result["text"] == (DEMO / "demo_text_recog.txt").read_text().strip()


def test_importing_the_package_loads_no_model_library() -> None:
    code = (
        "import sys, ocrserve; "
        "print(sorted(m for m in ('numpy', 'torch', 'cv2', 'onnxruntime') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert out.strip() == "[]"
