"""The TorchServe handler module, driven the way TorchServe drives it (a context, request rows)."""

from __future__ import annotations

import base64
from pathlib import Path
from types import SimpleNamespace

import pytest

from ocrserve import torchserve_handler
from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.mar import HANDLER, extract_archive, read_manifest
from tests.conftest import DEMO

REC = (DEMO / "demo_text_recog.jpg").read_bytes()
WORD = (DEMO / "demo_text_recog.txt").read_text().strip()


@pytest.fixture()
def context(tmp_path: Path) -> SimpleNamespace:
    mar = build_bundled_archive("ppocr_rec", tmp_path / "store")
    assert read_manifest(mar).handler == HANDLER == torchserve_handler.__name__
    extract_archive(mar, tmp_path / "model")
    torchserve_handler._predictor = None
    return SimpleNamespace(system_properties={"model_dir": str(tmp_path / "model"), "gpu_id": None})


def test_handle_rows_like_torchserve(context: SimpleNamespace) -> None:
    rows = [
        {"body": REC},  # raw body (curl -T)
        {"data": bytearray(REC)},  # multipart field data
        {"data": base64.b64encode(REC).decode()},  # base64 text
        {"body": b"not an image"},
    ]
    out = torchserve_handler.handle(rows, context)
    assert out is not None
    assert [r.get("text") for r in out[:3]] == [WORD, WORD, WORD]
    assert out[3]["code"] == 400 and out[3]["type"] == "BadRequestException"
    assert torchserve_handler.handle(None, context) is None
