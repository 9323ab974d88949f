"""``--runtime onnx`` MMOCR archives: ONNX file + config only, served by `OnnxMMOCRPredictor`
with torch blocked, answering what the PyTorch archive answers; old archives still load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from ocrserve.archives.loader import load_predictor
from ocrserve.archives.mar import MANIFEST_PATH, extract_archive
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
from ocrserve.mmocr.onnx_export import OnnxNetwork
from ocrserve.mmocr.onnx_predictor import OnnxMMOCRPredictor
from tests.conftest import DEMO, REPO
from tests.tiny_mmocr import TINY_MODELS, legacy_onnx_archive, tiny_mmocr_archives

#: Runs in a child whose ``import torch`` fails: loads an extracted archive, predicts the
#: images of an .npz, prints the results as JSON and whether torch got imported.
BLOCKED = """
import json, sys
sys.modules["torch"] = None  # any import of torch now raises ImportError
import numpy as np
from ocrserve.archives.loader import load_predictor
predictor = load_predictor(sys.argv[1], 1)
images = list(np.load(sys.argv[2]).values())
results = predictor.predict(images)
print(json.dumps({"type": type(predictor).__name__, "results": results,
                  "torch": any(m == "torch" or m.startswith("torch.") for m in sys.modules
                               if sys.modules[m] is not None)}))
"""


def _images(task: str) -> list[np.ndarray]:
    if task == "textdet":
        page = cv2.imread(str(DEMO / "demo_text_det.jpg"))
        return [page, page[: page.shape[0] // 2]]
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(32, 100, 3), (48, 40, 3)]]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_mmocr_archives(tmp_path_factory.mktemp("tiny-mmocr"))


def _extracted(store: Path, name: str) -> Path:
    dest = store.parent / "x" / name
    if not dest.is_dir():
        extract_archive(store / f"{name}.mar", dest)
    return dest


def _blocked(model_dir: Path, images: list[np.ndarray], tmp: Path) -> dict[str, Any]:
    npz = tmp / "images.npz"
    np.savez(npz, *images)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", BLOCKED, str(model_dir), str(npz)],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert res.returncode == 0, res.stderr
    out: dict[str, Any] = json.loads(res.stdout)
    return out


def assert_same_answers(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    """Within the parity tolerances: polygons 0.5 px, scores 1e-4, texts identical."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        if "boundary_result" in w:
            assert len(g["boundary_result"]) == len(w["boundary_result"])
            for gb, wb in zip(g["boundary_result"], w["boundary_result"]):
                assert len(gb) == len(wb)
                np.testing.assert_allclose(gb[:-1], wb[:-1], atol=0.5)
                assert gb[-1] == pytest.approx(wb[-1], abs=1e-4)
        else:
            assert g["text"] == w["text"]
            np.testing.assert_allclose(g["score"], w["score"], atol=1e-4)


@pytest.mark.parametrize("name", TINY_MODELS)
def test_onnx_archive_holds_the_onnx_file_and_the_config_only(store: Path, name: str) -> None:
    with zipfile.ZipFile(store / f"{name}_onnx.mar") as zf:
        members = set(zf.namelist())
        manifest = json.loads(zf.read(MANIFEST_PATH))
    dicts = {"dict_0.txt"} if name == "tiny_rec" else set()
    assert members == {MANIFEST_PATH, "config.json", "model.onnx", *dicts}
    assert manifest["model"]["serializedFile"] == "model.onnx"
    section = manifest["ocrserve"]
    assert (section["engine"], section["onnx"]) == ("onnx", "model.onnx")
    task = "textdet" if name == "tiny_det" else "textrecog"
    assert section["task"] == section["serving"]["task"] == task
    if task == "textrecog":
        assert section["serving"]["label_convertor"]["dict_file"] == "dict_0.txt"
    with zipfile.ZipFile(store / f"{name}.mar") as zf:  # --runtime torch: weights, no ONNX
        assert "weights.safetensors" in zf.namelist() and "model.onnx" not in zf.namelist()


@pytest.mark.parametrize("name", TINY_MODELS)
def test_onnx_archive_serves_without_torch_as_the_torch_archive_does(
    store: Path, name: str, tmp_path: Path
) -> None:
    onnx_dir, torch_dir = _extracted(store, f"{name}_onnx"), _extracted(store, name)
    task = "textdet" if name == "tiny_det" else "textrecog"
    images = _images(task)
    out = _blocked(onnx_dir, images, tmp_path)
    assert out["type"] == "OnnxMMOCRPredictor" and out["torch"] is False
    want = load_predictor(torch_dir, 1).predict(images)
    if task == "textdet":
        assert want[0]["boundary_result"], "the tiny detector should find text on the demo page"
    assert_same_answers(out["results"], want)
    local = load_predictor(onnx_dir, 1)  # with torch installed: the same torch-free predictor
    assert isinstance(local, OnnxMMOCRPredictor)
    assert local.predict(images) == out["results"]


@pytest.mark.parametrize("name", TINY_MODELS)
def test_old_onnx_archives_with_weights_still_load(store: Path, name: str, tmp_path: Path) -> None:
    legacy = legacy_onnx_archive(store, name)
    extract_archive(legacy, tmp_path / "legacy")
    predictor = load_predictor(tmp_path / "legacy", 1)
    assert isinstance(predictor, MMOCRPredictor)
    assert isinstance(predictor.network, OnnxNetwork)
    task = "textdet" if name == "tiny_det" else "textrecog"
    new = load_predictor(_extracted(store, f"{name}_onnx"), 1)
    assert_same_answers(predictor.predict(_images(task)), new.predict(_images(task)))


def test_an_old_onnx_archive_without_torch_says_how_to_serve_it(
    store: Path, tmp_path: Path
) -> None:
    extract_archive(legacy_onnx_archive(store, "tiny_det"), tmp_path / "legacy")
    npz = tmp_path / "images.npz"
    np.savez(npz, np.zeros((8, 8, 3), np.uint8))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", BLOCKED, str(tmp_path / "legacy"), str(npz)],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert res.returncode != 0
    assert "pip install 'ocrserve[torch]'" in res.stderr and "archive it again" in res.stderr


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("tiny_det", {"box_score_threshold": 0.5}),
        ("tiny_det", {"max_side": 200}),
        ("tiny_rec", {"char_scores": True}),
    ],
)
def test_request_options_act_on_onnx_archives_as_on_torch_ones(
    store: Path, name: str, options: dict[str, Any]
) -> None:
    task = "textdet" if name == "tiny_det" else "textrecog"
    onnx = load_predictor(_extracted(store, f"{name}_onnx"), 1)
    torch_predictor = load_predictor(_extracted(store, name), 1)
    got = onnx.predict(_images(task), options)
    assert_same_answers(got, torch_predictor.predict(_images(task), options))
    if task == "textrecog":
        assert all(len(r["char_scores"]) == len(r["text"]) for r in got)
