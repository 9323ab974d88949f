"""``ocrserve compare`` against real servers on loopback: agreement on the bundled models and the
MMOCR parity fixtures (exit 0), and servers deliberately serving something else under the same
name (exit 1, red pictures). Fatal cases (no server, refused key, unknown model) exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEMO, REPO, SHARED, ServerProcess, free_port
from tests.prerequisites import needs_shared

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
# The CLI wires `compare` to these two functions; run them the same way in a child process, so
# that thread pinning and model imports stay out of the test process.


def _compare(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrserve", "compare", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=280,
    )


def _bundled(name: str) -> Path:
    from ocrserve.archives.bundled import ensure_bundled_store

    return ensure_bundled_store() / f"{name}.mar"


def _addr(server: ServerProcess) -> str:
    return server.url.removeprefix("http://")


def _threads(server: ServerProcess, name: str, headers: dict[str, str] | None = None) -> str:
    describe = httpx.get(f"{server.management_url}/models/{name}", headers=headers or {})
    return str(describe.json()[0]["cpuThreads"])


def _red(path: Path) -> int:
    arr = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((arr[..., 0] > 200) & (arr[..., 1] < 60) & (arr[..., 2] < 60)).sum())


@pytest.mark.parametrize("name", ["ppocr_det", "ppocr_rec", "ocr"])
def test_bundled_models_agree(server: ServerProcess, name: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = _compare(
        str(DEMO),
        str(_bundled(name)),
        name,
        "--inference-addr",
        _addr(server),
        "--threads",
        _threads(server, name),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    table = res.stdout.splitlines()
    assert table[0].split()[:4] == ["image", "local", "served", "matched"]
    assert {line.split()[0] for line in table[1:3]} == {"demo_text_det.jpg", "demo_text_recog.jpg"}
    assert "2 of 2 images agree" in res.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["ok"] and report["model_name"] == name
    det = next(i for i in report["images"] if i["image"].endswith("demo_text_det.jpg"))
    if name == "ocr":
        texts = {line["text"] for line in det["served_result"]["result"]}
        assert {"Welcome to ocrserve", "OPEN 24 HOURS"} <= texts
    if name == "ppocr_det":
        assert det["local_count"] == det["served_count"] == det["matched"] == 6
    for image in report["images"]:
        picture = out / image["picture"]
        assert Image.open(picture).format == "PNG" and _red(picture) == 0
        assert image["picture"] in (out / "index.html").read_text()


def _variant_of_ocr(store: Path) -> None:
    """``ocr`` with detection boxes unclipped to 2.0 instead of 1.5: same name, other answers."""
    from ocrserve.archives.mar import new_manifest, write_archive
    from ocrserve.ppocr import DEFAULT_CONFIG, TASK_FILES
    from ocrserve.ppocr.weights import weights_path

    roles = TASK_FILES["e2e"]
    files: dict[str, str | os.PathLike[str] | bytes] = {
        arcname: weights_path(role) for role, arcname in roles.items()
    }
    config = {**DEFAULT_CONFIG, "det": {"unclip_ratio": 2.0}}
    files["config.json"] = json.dumps(config).encode()
    section = {
        "task": "e2e",
        "engine": "onnx",
        "kind": "ppocr",
        "config": "config.json",
        "files": dict(roles),
    }
    write_archive(store / "ocr.mar", new_manifest("ocr", "1.0", "det.onnx", section), files)


@pytest.fixture(scope="module")
def other_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Token auth on, serving a different ``ocr`` under the bundled one's name."""
    tmp = tmp_path_factory.mktemp("other")
    _variant_of_ocr(tmp / "store")
    srv = ServerProcess(tmp, "--model-store", str(tmp / "store"), "--models", "all", auth=True)
    try:
        srv.wait_healthy()
        yield srv
    finally:
        srv.stop()


def test_a_different_model_under_the_same_name_differs(
    other_server: ServerProcess, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    key = json.loads((other_server.cwd / "key_file.json").read_text())["management"]["key"]
    threads = _threads(other_server, "ocr", {"Authorization": f"Bearer {key}"})
    # Run from the server's folder: the key comes from its key_file.json.
    res = _compare(
        str(DEMO / "demo_text_det.jpg"),
        str(_bundled("ocr")),
        "ocr",
        "--inference-addr",
        _addr(other_server),
        "--threads",
        threads,
        "--out",
        str(out),
        cwd=other_server.cwd,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    assert "DIFFER" in res.stdout and "0 of 1 images agree" in res.stdout
    assert "vertices differ by" in res.stdout
    image = json.loads((out / "report.json").read_text())["images"][0]
    assert not image["ok"] and image["max_vertex_diff"] > 0.5
    assert _red(out / image["picture"]) > 1000
    assert "DIFFER" in (out / "index.html").read_text()


def test_fatal_cases_exit_2(other_server: ServerProcess, tmp_path: Path) -> None:
    image, mar = str(DEMO / "demo_text_recog.jpg"), str(_bundled("ppocr_rec"))
    out = ["--out", str(tmp_path / "out")]
    res = _compare(
        image,
        mar,
        "ppocr_rec",
        "--inference-addr",
        _addr(other_server),
        "--token",
        "wrong",
        *out,
        cwd=tmp_path,
    )
    assert res.returncode == 2 and "refused the key" in res.stderr and "--token" in res.stderr
    res = _compare(
        image,
        mar,
        "nothing_here",
        "--inference-addr",
        _addr(other_server),
        *out,
        cwd=other_server.cwd,
    )
    assert res.returncode == 2 and "nothing_here" in res.stderr, res.stderr
    res = _compare(
        image, mar, "ppocr_rec", "--inference-addr", f"127.0.0.1:{free_port()}", *out, cwd=tmp_path
    )
    assert res.returncode == 2 and "cannot reach the inference API" in res.stderr


# -- the MMOCR 0.6.3 parity fixtures -----------------------------------------------------------

# One model per kind of answer (a detector, a recognizer with a score, one with a list of
# character scores), the recognizers of issue 21 on one small image each (SAR's sequential
# decoder, ABINet's language model, CRNN behind TPS rectification, SegOCR with its own
# class-map decoding), and TextSnake, whose post-processing has the most code of its own (on
# det_600x900, the image where its fixture finds text); running every fixture model locally and
# served takes many minutes on small machines, and their numbers are checked against MMOCR by
# the parity tests.
FIXTURE_MODELS = {
    "dbnet_r18_fpnc_1200e_icdar2015": ("textdet", ["det_640x640.png", "det_600x900.jpg"]),
    "textsnake_r50_fpn_unet_1200e_ctw1500": ("textdet", ["det_600x900.jpg"]),
    "crnn_academic_dataset": ("textrecog", ["rec_100x32.png", "rec_32x100_vertical.png"]),
    "nrtr_r31_1by16_1by8_academic": ("textrecog", ["rec_100x32.png"]),
    # Issue 21: the step-by-step SAR decoder and ABINet's iterative language model.
    "sar_r31_sequential_decoder_academic": ("textrecog", ["rec_64x32.png"]),
    "abinet_academic": ("textrecog", ["rec_64x32.png"]),
    "crnn_tps_academic_dataset": ("textrecog", ["rec_64x32.png"]),
    "seg_r31_1by16_fpnocr_academic": ("textrecog", ["rec_64x32.png"]),
}
THREADS = "2"
needs_fixtures = needs_shared("fixtures/mmocr-0.6.3")


def _files(task: str, stem: str) -> tuple[Path, Path]:
    folder = FIXTURES / task / stem
    return folder / f"{stem}.py", folder / "checkpoint.pth"


def _archive(config: Path, checkpoint: Path, store: Path, name: str) -> None:
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ocrserve",
            "archive",
            str(config),
            str(checkpoint),
            "--output-folder",
            str(store),
            "--model-name",
            name,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )
    assert res.returncode == 0, res.stderr


def _shifted_dbnet(tmp: Path) -> Path:
    """DBNet's fixture checkpoint with the bias shift of ``bias_shift/shift.json`` applied."""
    import torch

    config, checkpoint = _files("textdet", "dbnet_r18_fpnc_1200e_icdar2015")
    shift = json.loads((config.parent / "bias_shift" / "shift.json").read_text())
    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    state[shift["param"]] = state[shift["param"]] + torch.tensor(shift["delta"])
    torch.save(ckpt, tmp / "shifted.pth")
    return tmp / "shifted.pth"


@pytest.fixture(scope="module")
def fixture_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The fixture models under their config's stems, and as ``dbnet`` DBNet's checkpoint with
    its last bias shifted: a different checkpoint under the name users would compare with."""
    tmp = tmp_path_factory.mktemp("fixtures")
    store = tmp / "store"
    for stem, (task, _) in FIXTURE_MODELS.items():
        _archive(*_files(task, stem), store, stem)
    config, _ = _files("textdet", "dbnet_r18_fpnc_1200e_icdar2015")
    _archive(config, _shifted_dbnet(tmp), store, "dbnet")
    srv = ServerProcess(
        tmp, "--model-store", str(store), "--models", "all", "--threads-per-worker", THREADS
    )
    try:
        srv.wait_healthy(timeout=240)
        yield srv
    finally:
        srv.stop()


def _image_folder(names: list[str], tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for name in names:
        shutil.copy(FIXTURES / "images" / name, folder / name)
    return folder


@needs_fixtures
@pytest.mark.parametrize("stem", sorted(FIXTURE_MODELS))
def test_fixture_models_agree(fixture_server: ServerProcess, stem: str, tmp_path: Path) -> None:
    task, images = FIXTURE_MODELS[stem]
    config, checkpoint = _files(task, stem)
    out = tmp_path / "out"
    res = _compare(
        str(_image_folder(images, tmp_path)),
        str(config),
        str(checkpoint),
        stem,
        "--inference-addr",
        _addr(fixture_server),
        "--threads",
        THREADS,
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(images)} of {len(images)} images agree" in res.stdout
    for image in json.loads((out / "report.json").read_text())["images"]:
        assert _red(out / image["picture"]) == 0


@needs_fixtures
def test_shifted_checkpoint_under_the_same_name_differs(
    fixture_server: ServerProcess, tmp_path: Path
) -> None:
    config, checkpoint = _files("textdet", "dbnet_r18_fpnc_1200e_icdar2015")
    out = tmp_path / "out"
    res = _compare(
        str(FIXTURES / "images" / "det_640x640.png"),
        str(config),
        str(checkpoint),
        "dbnet",
        "--inference-addr",
        _addr(fixture_server),
        "--threads",
        THREADS,
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert res.returncode == 1, res.stdout + res.stderr
    image = json.loads((out / "report.json").read_text())["images"][0]
    # Shifting the last bias moves every score and drops or adds polygons.
    assert image["max_score_diff"] > 1e-3 and (image["only_local"] or image["only_served"])
    assert _red(out / image["picture"]) > 100
