"""Mask R-CNN (issue 36) end to end: ``ocrserve archive`` of the MMOCR 0.6.3 fixtures, served
with ``--models all``, answering what ``ocrserve predict`` answers and, within the parity rules of
tests/parity/test_mmocr_parity_mask_rcnn.py, what MMOCR answered; ``ocrserve compare`` agrees;
``--runtime onnx`` is refused with the reason."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SHARED, ServerProcess
from tests.mask_rcnn_matching import boundary_mismatch
from tests.prerequisites import needs_shared

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
STEMS = {
    "mask_icdar": "mask_rcnn_r50_fpn_160e_icdar2015",
    "mask_ctw": "mask_rcnn_r50_fpn_160e_ctw1500",
}
IMAGE = "det_1280x720.jpg"
THREADS = "2"
pytestmark = needs_shared("fixtures/mmocr-0.6.3/textdet", "fixtures/mmocr-0.6.3/images")


def _files(stem: str) -> tuple[Path, Path]:
    folder = FIXTURES / "textdet" / stem
    return folder / f"{stem}.py", folder / "checkpoint.pth"


def _ocrserve(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrserve", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=400,
    )  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("mask_rcnn")
    store = tmp / "store"
    for name, stem in STEMS.items():
        res = _ocrserve("archive", *map(str, _files(stem)), "--output-folder", str(store),
                        "--model-name", name)  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip().endswith(f"{name}.mar")
    srv = ServerProcess(
        tmp, "--model-store", str(store), "--models", "all", "--threads-per-worker", THREADS
    )
    try:
        srv.wait_healthy(timeout=240)
        yield srv, store
    finally:
        srv.stop()


@pytest.mark.parametrize("name", sorted(STEMS))
def test_served_equals_predict_and_mmocr(served: tuple[ServerProcess, Path], name: str) -> None:
    srv, store = served
    path = FIXTURES / "images" / IMAGE
    resp = httpx.put(f"{srv.url}/predictions/{name}", content=path.read_bytes(), timeout=300)
    assert resp.status_code == 200, resp.text
    local = _ocrserve("predict", str(store / f"{name}.mar"), str(path), "--threads", THREADS)
    assert local.returncode == 0, local.stderr
    assert resp.json() == json.loads(local.stdout)
    expected = json.loads(
        (
            FIXTURES / "textdet" / STEMS[name] / "base" / f"{Path(IMAGE).stem}.result.json"
        ).read_text()
    )
    assert list(resp.json()) == ["boundary_result"]
    assert boundary_mismatch(resp.json()["boundary_result"], expected["boundary_result"]) is None


def test_compare_agrees(served: tuple[ServerProcess, Path], tmp_path: Path) -> None:
    srv, _ = served
    images = tmp_path / "images"
    images.mkdir()
    shutil.copy(FIXTURES / "images" / IMAGE, images / IMAGE)
    res = _ocrserve(
        "compare", str(images), *map(str, _files(STEMS["mask_icdar"])), "mask_icdar",
        "--inference-addr", srv.url.removeprefix("http://"), "--threads", THREADS,
        "--out", str(tmp_path / "out"), cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 of 1 images agree" in res.stdout


def test_onnx_is_refused_with_the_reason(tmp_path: Path) -> None:
    res = _ocrserve(
        "archive", *map(str, _files(STEMS["mask_icdar"])), "--output-folder", str(tmp_path),
        "--runtime", "onnx",
    )  # fmt: skip
    assert res.returncode == 2
    assert "OCRMaskRCNN is not exported" in res.stderr and "NMS" in res.stderr
    assert "--runtime torch" in res.stderr
    assert not list(tmp_path.iterdir())
