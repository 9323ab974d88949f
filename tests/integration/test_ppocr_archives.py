"""PaddleOCR ONNX models as archives, made with `ocrserve archive --det/--rec/--cls/--dict` and
served by a real server: tiny networks written here, the bundled PP-OCRv6 files, and PP-OCRv4's
files when ``OCRSERVE_PPOCRV4_DIR`` names a folder holding them (the ``models/`` folder of the
``rapidocr-onnxruntime==1.4.4`` wheel)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ocrserve.ppocr.weights import weights_path
from tests.conftest import DEMO, REPO, ServerProcess, running
from tests.prerequisites import tool_skip_reason
from tests.tiny_ppocr import tiny_cls, tiny_det, tiny_rec

DICTIONARY = list("0123456789")
V4_DIR = os.environ.get("OCRSERVE_PPOCRV4_DIR")
V4_FILES = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
}
DEMO_LINES = [
    line["text"] for line in json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
]


def _ocrserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrserve", *args], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _archive(*args: str) -> list[str]:
    res = _ocrserve("archive", *args)
    assert res.returncode == 0, res.stderr
    return [Path(line).name for line in res.stdout.split()]


def _page_png() -> bytes:
    img = np.full((240, 400, 3), 235, np.uint8)
    img[100:130, 60:330] = 15
    out = io.BytesIO()
    Image.fromarray(img).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("ppocr-archives")
    store = tmp / "store"
    (tmp / "keys.txt").write_text("\n".join(DICTIONARY) + "\n", encoding="utf-8")
    det, rec = tiny_det(tmp / "det.onnx"), tiny_rec(tmp / "rec.onnx", len(DICTIONARY) + 2)
    cls = tiny_cls(tmp / "cls.onnx")
    made = _archive("--det", str(det), "--rec", str(rec), "--cls", str(cls),
                    "--dict", str(tmp / "keys.txt"), "--output-folder", str(store),
                    "--model-name", "tiny")  # fmt: skip
    assert made == ["tiny_det.mar", "tiny_rec.mar", "tiny.mar"]
    made = _archive("--det", str(weights_path("det")), "--rec", str(weights_path("rec")),
                    "--cls", str(weights_path("cls")), "--output-folder", str(store),
                    "--model-name", "v6")  # fmt: skip
    assert made == ["v6_det.mar", "v6_rec.mar", "v6.mar"]
    if V4_DIR:
        v4 = {role: str(Path(V4_DIR) / name) for role, name in V4_FILES.items()}
        _archive("--det", v4["det"], "--rec", v4["rec"], "--cls", v4["cls"], "--ppocr-settings",
                 "v4", "--output-folder", str(store), "--model-name", "v4")  # fmt: skip
    srv = ServerProcess(tmp, "--model-store", str(store), "--models", "tiny_det.mar",
                        "tiny_rec.mar", "tiny.mar", "v6.mar", "v6_rec.mar",
                        *(["v4.mar"] if V4_DIR else []))  # fmt: skip
    for started in running(srv):
        yield started, store


def test_tiny_detector_finds_the_dark_line(served: tuple[ServerProcess, Path]) -> None:
    srv, _ = served
    resp = httpx.put(f"{srv.url}/predictions/tiny_det", content=_page_png(), timeout=60)
    assert resp.status_code == 200, resp.text
    ((*quad, score),) = resp.json()["boundary_result"]
    xs, ys = quad[0::2], quad[1::2]
    assert min(xs) <= 60 and max(xs) >= 329 and min(ys) <= 100 and max(ys) >= 129
    assert score > 0.9


def test_tiny_recognizer_and_end_to_end_answer_in_their_forms(
    served: tuple[ServerProcess, Path],
) -> None:
    srv, _ = served
    resp = httpx.put(f"{srv.url}/predictions/tiny_rec", content=_page_png(), timeout=60)
    assert resp.status_code == 200, resp.text
    assert set(resp.json()) == {"text", "score"}
    assert set(resp.json()["text"]) <= set(DICTIONARY) | {" "}
    resp = httpx.put(f"{srv.url}/predictions/tiny", content=_page_png(), timeout=60)
    assert resp.status_code == 200, resp.text
    for line in resp.json()["result"]:
        assert set(line) == {"box", "box_score", "text", "text_score"}


def test_v6_archives_read_the_demo_and_describe_their_weights(
    served: tuple[ServerProcess, Path],
) -> None:
    srv, _ = served
    resp = httpx.put(
        f"{srv.url}/predictions/v6", content=(DEMO / "demo_text_det.jpg").read_bytes(), timeout=60
    )
    assert [line["text"] for line in resp.json()["result"]] == DEMO_LINES
    resp = httpx.put(
        f"{srv.url}/predictions/v6_rec",
        content=(DEMO / "demo_text_recog.jpg").read_bytes(),
        timeout=60,
    )
    assert resp.json()["text"] == (DEMO / "demo_text_recog.txt").read_text().strip()
    (info,) = httpx.get(f"{srv.management_url}/models/v6").json()
    assert info["task"] == "e2e"
    assert info["weights"].startswith("det PP-OCRv6_det_small.onnx (sha256 ")
    assert "cls ch_ppocr_mobile_v2.0_cls_mobile.onnx" in info["weights"]
    assert "rec PP-OCRv6_rec_small.onnx" in info["weights"]
    (info,) = httpx.get(f"{srv.management_url}/models/tiny_det").json()
    assert info["weights"].startswith("det det.onnx (sha256 ")


@pytest.mark.skipif(
    not V4_DIR,
    reason=tool_skip_reason(
        "the PP-OCRv4 ONNX files",
        "set OCRSERVE_PPOCRV4_DIR to the models/ folder of the rapidocr-onnxruntime==1.4.4 wheel, "
        "unpacked, not installed",
    ),
)
def test_v4_archive_reads_the_demo(served: tuple[ServerProcess, Path]) -> None:
    srv, _ = served
    resp = httpx.put(
        f"{srv.url}/predictions/v4", content=(DEMO / "demo_text_det.jpg").read_bytes(), timeout=60
    )
    assert [line["text"] for line in resp.json()["result"]] == DEMO_LINES


def test_cli_refuses_bad_files_with_the_reason(tmp_path: Path) -> None:
    bad = tmp_path / "det.onnx"
    bad.write_text("not a model")
    res = _ocrserve("archive", "--det", str(bad), "--output-folder", str(tmp_path / "out"))
    assert res.returncode == 2
    assert "error: detector det.onnx is not a usable ONNX model" in res.stderr
    keys = tmp_path / "keys.txt"
    keys.write_text("a\nb\nc\n")
    res = _ocrserve("archive", "--rec", str(weights_path("rec")), "--dict", str(keys),
                    "--output-folder", str(tmp_path / "out"))  # fmt: skip
    assert res.returncode == 2
    assert "dictionary from keys.txt does not fit recognizer PP-OCRv6_rec_small.onnx" in res.stderr
    assert "3 characters (+ the CTC blank + a space = 5 classes)" in res.stderr
    assert "predicts 18710 classes" in res.stderr
    res = _ocrserve("archive", "--output-folder", str(tmp_path / "out"))
    assert res.returncode == 2 and "needs CONFIG CHECKPOINT (MMOCR) or --det/--rec" in res.stderr
    assert not (tmp_path / "out").exists()
