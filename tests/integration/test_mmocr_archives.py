"""MMOCR models as archives: archive, serve with --models all, compare with `ocrserve predict`.

Uses the parity fixtures of the real MMOCR 0.6.3 in ../shared (skipped without them). Also old
archives made by MMOCR's mmocr2torchserve, and such an archive carrying a malicious pickle.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from ocrserve.archives.mar import MANIFEST_PATH
from tests.conftest import REPO, SHARED, ServerProcess
from tests.prerequisites import needs_shared

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
pytestmark = needs_shared("fixtures/mmocr-0.6.3")
MODELS = {
    "dbnet": ("textdet", "dbnet_r18_fpnc_1200e_icdar2015"),
    "crnn": ("textrecog", "crnn_academic_dataset"),
    "crnn_tps": ("textrecog", "crnn_tps_academic_dataset"),
    "seg": ("textrecog", "seg_r31_1by16_fpnocr_academic"),
}
#: Archived with --runtime onnx only: a recognizer fed valid_ratio (and, for the vertical
#: image, three rotations in one batch), a detector beyond DBNet, and the recognizers of
#: issue 21 (SAR's sequential decoder, ABINet with its iterative language model).
ONNX_ONLY = {
    "sar": ("textrecog", "sar_r31_parallel_decoder_academic"),
    "panet": ("textdet", "panet_r18_fpem_ffm_600e_icdar2015"),
    "sar_seq": ("textrecog", "sar_r31_sequential_decoder_academic"),
    "abinet": ("textrecog", "abinet_academic"),
}
IMAGES = {
    "textdet": ["det_640x640.png", "det_600x900.jpg"],
    "textrecog": ["rec_100x32.png", "rec_160x48.jpg", "rec_32x100_vertical.png"],
}


def _files(task: str, stem: str) -> tuple[Path, Path]:
    folder = FIXTURES / task / stem
    return folder / f"{stem}.py", folder / "checkpoint.pth"


def _ocrserve(*args: str, cwd: Path | None = None) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "ocrserve", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


def _legacy_archive(path: Path, config: Path, checkpoint: Path, marker: Path) -> None:
    """What MMOCR's mmocr2torchserve wrote: config.py, the .pth and a Python handler."""
    manifest = {
        "createdOn": "01/01/2022 00:00:00",
        "runtime": "python",
        "model": {"modelName": path.stem, "serializedFile": f"{path.stem}.pth",
                  "handler": "mmocr_handler.py", "modelFile": "config.py", "modelVersion": "1.0"},
        "archiverVersion": "0.5.3",
    }  # fmt: skip
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MANIFEST_PATH, json.dumps(manifest))
        zf.write(config, "config.py")
        zf.write(checkpoint, f"{path.stem}.pth")
        zf.writestr("mmocr_handler.py", f"open({str(marker)!r}, 'w').write('ran')\n")


class _Payload:
    """Unpickling this would create a file: proof that nothing was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("mmocr")
    store = tmp / "store"
    marker = tmp / "handler-ran"
    for name, (task, stem) in MODELS.items():
        config, checkpoint = _files(task, stem)
        for runtime in ("torch", "onnx"):
            out = _ocrserve("archive", str(config), str(checkpoint), "--output-folder", str(store),
                            "--model-name", f"{name}_onnx" if runtime == "onnx" else name,
                            "--runtime", runtime)  # fmt: skip
            assert out.strip().endswith(".mar")
    for name, (task, stem) in ONNX_ONLY.items():
        config, checkpoint = _files(task, stem)
        _ocrserve("archive", str(config), str(checkpoint), "--output-folder", str(store),
                  "--model-name", f"{name}_onnx", "--runtime", "onnx")  # fmt: skip
    config, checkpoint = _files("textrecog", "crnn_academic_dataset")
    _legacy_archive(store / "legacy_crnn.mar", config, checkpoint, marker)
    evil = tmp / "evil.pth"
    with open(evil, "wb") as f:
        pickle.dump({"state_dict": {}, "meta": _Payload(tmp / "unpickled")}, f)
    _legacy_archive(store / "evil.mar", config, evil, marker)
    srv = ServerProcess(tmp, "--model-store", str(store), "--models", "all")
    try:
        srv.wait_healthy(healthy=False)
        srv.wait_log("model legacy_crnn: worker")
        srv.wait_log("model evil:")
        yield srv, store, tmp
    finally:
        srv.stop()


@pytest.mark.parametrize("name", ["dbnet", "crnn", "legacy_crnn", "crnn_tps", "seg"])
def test_served_equals_predict(served, name: str) -> None:  # type: ignore[no-untyped-def]
    srv, store, _ = served
    task, stem = MODELS["crnn" if name == "legacy_crnn" else name]
    for image in IMAGES[task]:
        path = FIXTURES / "images" / image
        resp = httpx.put(f"{srv.url}/predictions/{name}", content=path.read_bytes(), timeout=120)
        assert resp.status_code == 200, resp.text
        threads = httpx.get(f"{srv.management_url}/models/{name}").json()[0]["cpuThreads"]
        local = json.loads(_ocrserve("predict", str(store / f"{name}.mar"), str(path),
                                     "--threads", str(threads)))  # fmt: skip
        assert resp.json() == local
        result_file = FIXTURES / task / stem / "base" / f"{Path(image).stem}.result.json"
        expected = json.loads(result_file.read_text())
        if task == "textrecog":
            assert local["text"] == expected["text"]
            # (CRNN+TPS answers a list of character scores, as MMOCR's simple_test)
            assert local["score"] == pytest.approx(expected["score"], abs=1e-4)
        else:
            assert len(local["boundary_result"]) == len(expected["boundary_result"])


@pytest.mark.parametrize(
    "name", ["dbnet", "crnn", "sar", "panet", "sar_seq", "abinet", "crnn_tps", "seg"]
)
def test_onnx_archives_serve_within_parity_tolerances(served, name: str) -> None:  # type: ignore[no-untyped-def]
    srv, store, _ = served
    task, stem = {**MODELS, **ONNX_ONLY}[name]
    manifest = json.loads(zipfile.ZipFile(store / f"{name}_onnx.mar").read(MANIFEST_PATH))
    assert (
        manifest["ocrserve"]["engine"] == "onnx"
        and manifest["ocrserve"]["onnx_max_abs_diff"] < 1e-3
    )
    for image in IMAGES[task]:
        body = (FIXTURES / "images" / image).read_bytes()
        resp = httpx.put(f"{srv.url}/predictions/{name}_onnx", content=body, timeout=120)
        assert resp.status_code == 200, resp.text
        got = resp.json()
        expected = json.loads(
            (FIXTURES / task / stem / "base" / f"{Path(image).stem}.result.json").read_text()
        )
        if task == "textrecog":
            assert got["text"] == expected["text"]
            assert got["score"] == pytest.approx(expected["score"], abs=1e-4)
            continue
        assert len(got["boundary_result"]) == len(expected["boundary_result"])
        for a, b in zip(got["boundary_result"], expected["boundary_result"]):
            assert max(abs(x - y) for x, y in zip(a[:-1], b[:-1])) <= 0.5
            assert a[-1] == pytest.approx(b[-1], abs=1e-4)


def test_legacy_handler_never_runs_and_malicious_pickle_refused(  # type: ignore[no-untyped-def]
    served,
) -> None:
    srv, _, tmp = served
    log = srv.log()
    assert "evil" in log and "weights_only" in log
    assert not (tmp / "unpickled").exists(), "the checkpoint was unpickled"
    assert not (tmp / "handler-ran").exists(), "the archive's handler was imported"
    resp = httpx.put(f"{srv.url}/predictions/evil", content=b"x")
    assert resp.status_code in (400, 503)
    describe = httpx.get(f"{srv.management_url}/models/evil").json()[0]
    assert "weights_only" in describe.get("loadError", "")
    # The good archives beside it serve.
    ok = httpx.put(f"{srv.url}/predictions/crnn",
                   content=(FIXTURES / "images" / "rec_64x32.png").read_bytes())  # fmt: skip
    assert ok.status_code == 200


def test_archive_refuses_existing_without_force(tmp_path: Path) -> None:
    config, checkpoint = _files("textrecog", "crnn_academic_dataset")
    args = ["archive", str(config), str(checkpoint), "--output-folder", str(tmp_path)]
    _ocrserve(*args)
    assert (tmp_path / "checkpoint.mar").is_file()  # the name defaults to the checkpoint's stem
    res = subprocess.run([sys.executable, "-m", "ocrserve", *args], capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert res.returncode == 2 and "checkpoint.mar already exists: model checkpoint" in res.stderr
    assert "--model-name NAME" in res.stderr and "reading config" not in res.stderr
    _ocrserve(*args, "--force")
    shutil.rmtree(tmp_path)


def test_archive_refuses_onnx_for_fcenet_with_the_reason(tmp_path: Path) -> None:
    config, checkpoint = _files("textdet", "fcenet_r50_fpn_1500e_icdar2015")
    res = subprocess.run(
        [sys.executable, "-m", "ocrserve", "archive", str(config), str(checkpoint),
         "--output-folder", str(tmp_path), "--runtime", "onnx"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert res.returncode == 2
    assert "FCENet is not exported" in res.stderr and "polygon NMS" in res.stderr
    assert "--runtime torch" in res.stderr
    assert not list(tmp_path.iterdir())
