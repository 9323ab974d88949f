"""``pip install ocrserve`` alone (no torch) serves ``--runtime onnx`` MMOCR archives and the
bundled models: a fresh virtual environment without torch, the real server on loopback ports.

The archives are built here with torch (tests/tiny_mmocr.py); the same archives served from this
(torch) environment give the reference answers. ``$OCRSERVE_LEAN_VENV`` names a torch-free venv
with ocrserve installed to reuse instead of making one (pip, ~20 s with a warm cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from ocrserve.server.launcher import LocalServer
from tests.conftest import DEMO, REPO
from tests.prerequisites import tool_skip_reason
from tests.tiny_mmocr import tiny_mmocr_archives
from tests.unit.mmocr.test_onnx_predictor import assert_same_answers

pytestmark = pytest.mark.slow
MODELS = ("tiny_det_onnx", "tiny_rec_onnx")
BUNDLED = ("ocr", "ppocr_det", "ppocr_rec")


def _make_venv(folder: Path) -> Path:
    python = folder / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(folder)], check=True)
    res = subprocess.run([str(python), "-m", "pip", "install", "-q", "-e", str(REPO)],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    if res.returncode != 0:
        pytest.skip(tool_skip_reason(f"pip install of the repo ({res.stderr[-300:]})", "PyPI"))
    return python


@pytest.fixture(scope="module")
def lean_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a virtual environment holding ocrserve and its dependencies only."""
    reuse = os.environ.get("OCRSERVE_LEAN_VENV")
    python = Path(reuse) / "bin" / "python" if reuse else None
    if python is None or not python.is_file():
        python = _make_venv(tmp_path_factory.mktemp("lean-venv"))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([str(python), "-c", "import torch"], capture_output=True, env=env)
    assert res.returncode != 0, f"{python}: torch is importable there"
    return python


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store = tiny_mmocr_archives(tmp_path_factory.mktemp("tiny-mmocr"))
    for name in ("tiny_det", "tiny_rec"):
        (store / f"{name}.mar").unlink()  # only the ONNX archives are served
    return store


def _serve(tmp: Path, store: Path, python: Path | None) -> LocalServer:
    args = ("--model-store", str(store), "--models", "all", *BUNDLED)
    return LocalServer(tmp, *args, pythonpath=REPO, python=python)


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, store: Path, lean_python: Path
) -> Iterator[tuple[LocalServer, LocalServer]]:
    """(torch-free server, this environment's server) on the same archives."""
    lean = _serve(tmp_path_factory.mktemp("lean"), store, lean_python)
    ref = _serve(tmp_path_factory.mktemp("ref"), store, None)
    try:
        lean.wait_healthy(180)
        ref.wait_healthy(180)
        yield lean, ref
    finally:
        lean.stop()
        ref.stop()


def _png(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", image)
    assert ok
    return data.tobytes()


def _bodies() -> dict[str, list[bytes]]:
    page = (DEMO / "demo_text_det.jpg").read_bytes()
    rng = np.random.default_rng(3)
    crops = [_png(rng.integers(0, 256, (32, 100, 3), dtype=np.uint8)),
             (DEMO / "demo_text_recog.jpg").read_bytes()]  # fmt: skip
    return {"tiny_det_onnx": [page], "tiny_rec_onnx": crops, "ocr": [page], "ppocr_det": [page],
            "ppocr_rec": [(DEMO / "demo_text_recog.jpg").read_bytes()]}  # fmt: skip


def _answers(server: LocalServer, model: str) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for body in _bodies()[model]:
        resp = httpx.put(f"{server.url}/predictions/{model}", content=body, timeout=120)
        assert resp.status_code == 200, resp.text
        out.append(resp.json())
    return out


@pytest.mark.parametrize("model", MODELS)
def test_mmocr_onnx_archive_serves_without_torch_as_with_it(servers, model: str) -> None:  # type: ignore[no-untyped-def]
    lean, ref = servers
    got, want = _answers(lean, model), _answers(ref, model)
    if model == "tiny_det_onnx":
        assert got[0]["boundary_result"], "the tiny detector should find text on the demo page"
    assert_same_answers(got, want)
    info = httpx.get(f"{lean.management_url}/models/{model}", timeout=10).json()[0]
    assert info["workers"] and all(w["status"] == "READY" for w in info["workers"])


def test_bundled_models_serve_without_torch(servers) -> None:  # type: ignore[no-untyped-def]
    lean, ref = servers
    lines = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
    ocr = _answers(lean, "ocr")[0]
    assert [r["text"] for r in ocr["result"]] == [line["text"] for line in lines]
    for model in BUNDLED:
        assert _approx(_answers(lean, model)) == _answers(ref, model), model


def _approx(value: Any) -> Any:
    """``value`` with every float as ``pytest.approx`` (1e-4): the same code on the same ONNX
    Runtime gives the same numbers, but the environments may hold other builds of it."""
    if isinstance(value, dict):
        return {k: _approx(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_approx(v) for v in value]
    return pytest.approx(value, abs=1e-4) if isinstance(value, float) else value
