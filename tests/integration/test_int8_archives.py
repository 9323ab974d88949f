"""``ocrserve archive --quantize int8``: real ONNX networks quantized by ONNX Runtime on a
calibration folder the test draws, measured against FP32, refused beyond the budget, recorded in
the manifest, shown by describe and served by a real server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEMO, REPO, ServerProcess, running
from tests.tiny_ppocr import tiny_det_deep, tiny_rec_near_tie

DICTIONARY = list("0123456789")


def _ocrserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrserve", *args], capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def _page(seed: int) -> Image.Image:
    """A light page with three rows of dark word-like blocks (what the tiny detector finds)."""
    rng = np.random.default_rng(seed)
    img = np.full((240, 400, 3), 235, np.uint8)
    for y in (40, 110, 180):
        x = 30
        while x < 330:
            width = int(rng.integers(40, 110))
            img[y : y + 28, x : min(x + width, 370)] = 15
            x += width + 25
    return Image.fromarray(img)


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _manifest(mar: Path) -> dict[str, object]:
    with zipfile.ZipFile(mar) as zf:
        data: dict[str, object] = json.loads(zf.read("MAR-INF/MANIFEST.json"))
        return data


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("int8")
    calibration = tmp / "calibration"
    calibration.mkdir()
    for n in range(3):
        _page(n).save(calibration / f"page{n}.png")
    return {
        "tmp": tmp,
        "calibration": calibration,
        "det": tiny_det_deep(tmp / "det.onnx"),
        "rec": tiny_rec_near_tie(tmp / "rec.onnx", DICTIONARY),
    }


@pytest.fixture(scope="module")
def store(files: dict[str, Path]) -> Path:
    store = files["tmp"] / "store"
    res = _ocrserve("archive", "--det", str(files["det"]), "--rec", str(files["rec"]),
                    "--quantize", "int8", "--calibration", str(files["calibration"]),
                    "--accuracy-budget", "100", "--output-folder", str(store),
                    "--model-name", "tiny")  # fmt: skip
    assert res.returncode == 0, res.stderr
    written = [Path(p).name for p in res.stdout.split()]
    assert written == ["tiny_det.mar", "tiny_rec.mar", "tiny.mar"]
    res = _ocrserve("archive", "--det", str(files["det"]), "--quantize", "int8",
                    "--calibration", str(files["calibration"]), "--output-folder", str(store),
                    "--model-name", "solo")  # fmt: skip
    assert res.returncode == 0, res.stderr  # the default budget: the detector keeps its boxes
    return store


def test_refused_beyond_the_budget_and_nothing_written(files: dict[str, Path]) -> None:
    out = files["tmp"] / "refused"
    for budget in ([], ["--accuracy-budget", "0"]):
        res = _ocrserve("archive", "--det", str(files["det"]), "--rec", str(files["rec"]),
                        "--quantize", "int8", "--calibration", str(files["calibration"]),
                        "--output-folder", str(out), "--model-name", "tiny",
                        *budget)  # fmt: skip
        assert res.returncode != 0
        assert "int8 disagrees with FP32 beyond the accuracy budget" in res.stderr
        assert "rec text_agreement" in res.stderr and "no archive written" in res.stderr
        assert not out.exists() or not list(out.iterdir())


def test_flags_are_checked(files: dict[str, Path]) -> None:
    out = str(files["tmp"] / "flags")
    res = _ocrserve("archive", "--det", str(files["det"]), "--quantize", "int8",
                    "--output-folder", out)  # fmt: skip
    assert res.returncode != 0 and "--quantize int8 needs --calibration DIR" in res.stderr
    res = _ocrserve("archive", "--det", str(files["det"]), "--calibration",
                    str(files["calibration"]), "--output-folder", out)  # fmt: skip
    assert res.returncode != 0 and "go with --quantize int8" in res.stderr
    empty = files["tmp"] / "empty"
    empty.mkdir()
    res = _ocrserve("archive", "--det", str(files["det"]), "--quantize", "int8",
                    "--calibration", str(empty), "--output-folder", out)  # fmt: skip
    assert res.returncode != 0 and "no images in it" in res.stderr


def test_manifest_records_the_measurement_of_the_archived_bytes(store: Path) -> None:
    import onnx

    mar = store / "tiny.mar"
    section = _manifest(mar)["ocrserve"]
    assert isinstance(section, dict)
    quant = section["quantization"]
    assert quant["precision"] == "int8" and quant["calibration_images"] == 3
    assert quant["accuracy_budget_points"] == 100.0
    det, rec = quant["networks"]["det"], quant["networks"]["rec"]
    with zipfile.ZipFile(mar) as zf:
        for net in (det, rec):
            data = zf.read(net["file"])
            assert hashlib.sha256(data).hexdigest() == net["sha256"] != net["fp32_sha256"]
            ops = {node.op_type for node in onnx.load_from_string(data).graph.node}
            assert {"QuantizeLinear", "DequantizeLinear"} <= ops
            assert net["kept_fp32_nodes"] == ["Conv_1"]  # the head convolution of each
            assert net["preparation"] == net["settings"]["prepare"] == "fused"
    assert det["agreement"]["metric"] == "det_hmean" and det["agreement"]["fp32_boxes"] > 0
    assert det["agreement"]["disagreement_points"] <= 1.0
    assert rec["agreement"]["metric"] == "text_agreement" and rec["agreement"]["samples"] > 0
    assert rec["agreement"]["disagreement_points"] > 1.0  # why it needed the budget of 100
    assert "det int8 (sha256 " in section["weights"]


@pytest.fixture(scope="module")
def served(store: Path) -> Iterator[ServerProcess]:
    srv = ServerProcess(store.parent, "--model-store", str(store),
                        "--models", "tiny.mar", "solo_det.mar")  # fmt: skip
    yield from running(srv)


def test_describe_shows_the_measurement(served: ServerProcess, store: Path) -> None:
    for name, mar in (("tiny", "tiny.mar"), ("solo_det", "solo_det.mar")):
        (info,) = httpx.get(f"{served.management_url}/models/{name}", timeout=30).json()
        section = _manifest(store / mar)["ocrserve"]
        assert isinstance(section, dict)
        assert info["quantization"] == section["quantization"]
    (info,) = httpx.get(f"{served.management_url}/models/solo_det", timeout=30).json()
    assert info["quantization"]["accuracy_budget_points"] == 1.0


def test_int8_archives_answer(served: ServerProcess) -> None:
    page = _png(_page(7))
    resp = httpx.put(f"{served.url}/predictions/solo_det", content=page, timeout=60)
    assert resp.status_code == 200, resp.text
    assert len(resp.json()["boundary_result"]) >= 3
    # drop_score 0: the near-tie recognizer's texts score low, and would all be left out
    resp = httpx.put(f"{served.url}/predictions/tiny?drop_score=0", content=page, timeout=60)
    assert resp.status_code == 200, resp.text
    lines = resp.json()["result"]
    assert len(lines) >= 3 and all(set(line["text"]) <= set(DICTIONARY) for line in lines)


def test_mmocr_detector_quantized_from_config_and_checkpoint(files: dict[str, Path]) -> None:
    torch = pytest.importorskip("torch", reason="an MMOCR checkpoint is written with torch")
    from tests.unit.mmocr.test_mmocr_predictor import _det_config, _weights

    tmp = files["tmp"] / "mmocr"
    tmp.mkdir()
    config = _det_config()
    config_path = tmp / "tiny_dbnet.py"
    config_path.write_text("".join(f"{key} = {value!r}\n" for key, value in config.items()))
    torch.save({"state_dict": _weights(config)}, tmp / "tiny_dbnet.pth")
    calibration = tmp / "calibration"
    calibration.mkdir()
    shutil.copy(DEMO / "demo_text_det.jpg", calibration)
    out = tmp / "out"
    args = [str(config_path), str(tmp / "tiny_dbnet.pth"), "--quantize", "int8",
            "--calibration", str(calibration), "--output-folder", str(out)]  # fmt: skip
    res = _ocrserve("archive", *args, "--runtime", "torch")
    assert res.returncode != 0 and "use --runtime onnx" in res.stderr
    res = _ocrserve("archive", *args, "--accuracy-budget", "100")
    assert res.returncode == 0, res.stderr
    section = _manifest(out / "tiny_dbnet.mar")["ocrserve"]
    assert isinstance(section, dict) and section["engine"] == "onnx"
    net = section["quantization"]["networks"]["det"]
    assert net["file"] == "model.onnx" and net["agreement"]["fp32_boxes"] > 0
    with zipfile.ZipFile(out / "tiny_dbnet.mar") as zf:
        assert hashlib.sha256(zf.read("model.onnx")).hexdigest() == net["sha256"]


def test_composed_archive_is_quantized_part_by_part(files: dict[str, Path]) -> None:
    pytest.importorskip("torch", reason="the tiny MMOCR archives are built with torch")
    from tests.tiny_mmocr import tiny_mmocr_archives

    tmp = files["tmp"] / "composed"
    tmp.mkdir()
    parts = tiny_mmocr_archives(tmp)
    calibration = tmp / "calibration"
    calibration.mkdir()
    shutil.copy(DEMO / "demo_text_det.jpg", calibration)
    res = _ocrserve("archive", "--det", str(parts / "tiny_det_onnx.mar"),
                    "--rec", str(parts / "tiny_rec_onnx.mar"), "--quantize", "int8",
                    "--calibration", str(calibration), "--accuracy-budget", "100",
                    "--output-folder", str(tmp / "out"), "--model-name", "pair")  # fmt: skip
    assert res.returncode == 0, res.stderr
    mar = tmp / "out" / "pair.mar"
    section = _manifest(mar)["ocrserve"]
    assert isinstance(section, dict) and section["kind"] == "e2e"
    quant = section["quantization"]["parts"]
    with zipfile.ZipFile(mar) as zf:
        for role in ("det", "rec"):
            net = quant[role]["networks"][role]
            data = zf.read(f"{role}/{net['file']}")
            assert hashlib.sha256(data).hexdigest() == net["sha256"]
            # each part archive's own manifest says it is int8 as well
            part = json.loads(zf.read(f"{role}/MAR-INF/MANIFEST.json"))["ocrserve"]
            assert part["quantization"]["networks"][role]["sha256"] == net["sha256"]
        assert quant["rec"]["networks"]["rec"]["agreement"]["samples"] > 0  # the line crops
