"""DRRG as an archive (issue 36): ``ocrserve archive``, served, ``ocrserve compare``, and
``--runtime onnx`` refused with the reason.

Archived from the parity fixture's config with the ``bias_shift`` weights (the base weights give
no boundaries), so the served answer is checked against MMOCR 0.6.3's boundaries as a set (its
order is not reproducible, see tests/parity/test_mmocr_parity_drrg.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, SHARED, ServerProcess
from tests.prerequisites import needs_shared

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
STEM = "drrg_r50_fpn_unet_1200e_ctw1500"
FOLDER = FIXTURES / "textdet" / STEM
IMAGE = "det_640x640.png"
THREADS = "1"
pytestmark = needs_shared(f"fixtures/mmocr-0.6.3/textdet/{STEM}", "fixtures/mmocr-0.6.3/images")


def _ocrserve(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ocrserve", *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )  # fmt: skip


def _shifted_checkpoint(tmp: Path) -> Path:
    import torch

    shift = json.loads((FOLDER / "bias_shift" / "shift.json").read_text())
    ckpt = torch.load(FOLDER / "checkpoint.pth", map_location="cpu", weights_only=True)
    state = ckpt["state_dict"]
    state[shift["param"]] = state[shift["param"]].float() + torch.tensor(shift["delta"])
    torch.save(ckpt, tmp / "drrg_shifted.pth")
    return tmp / "drrg_shifted.pth"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("drrg")
    store = tmp / "store"
    res = _ocrserve("archive", str(FOLDER / f"{STEM}.py"), str(_shifted_checkpoint(tmp)),
                    "--output-folder", str(store), "--model-name", "drrg")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().endswith("drrg.mar")
    srv = ServerProcess(
        tmp, "--model-store", str(store), "--models", "all", "--threads-per-worker", THREADS
    )
    try:
        srv.wait_healthy(timeout=240)
        yield srv, store
    finally:
        srv.stop()


def _as_set(boundaries: list[list[float]]) -> list[list[float]]:
    return sorted(boundaries)


def test_served_drrg_gives_mmocr_boundaries(served: tuple[ServerProcess, Path]) -> None:
    srv, _ = served
    body = (FIXTURES / "images" / IMAGE).read_bytes()
    resp = httpx.put(f"{srv.url}/predictions/drrg", content=body, timeout=240)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    expected = json.loads((FOLDER / "bias_shift" / f"{Path(IMAGE).stem}.result.json").read_text())
    assert set(got) == {"boundary_result"}
    want = _as_set(expected["boundary_result"])
    mine = _as_set(got["boundary_result"])
    assert len(mine) == len(want) > 0
    for a, b in zip(mine, want):  # measured: vertices identical, scores within 2e-8
        assert len(a) == len(b)
        assert max(abs(x - y) for x, y in zip(a[:-1], b[:-1])) <= 0.5
        assert a[-1] == pytest.approx(b[-1], abs=1e-4)


def test_compare_agrees_with_the_archive(
    served: tuple[ServerProcess, Path], tmp_path: Path
) -> None:
    srv, store = served
    res = _ocrserve("compare", str(FIXTURES / "images" / IMAGE), str(store / "drrg.mar"), "drrg",
                    "--inference-addr", srv.url.removeprefix("http://"), "--threads", THREADS,
                    "--out", str(tmp_path / "out"), cwd=tmp_path)  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 of 1 images agree" in res.stdout
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report  # the report names the image compared


def test_archive_refuses_onnx_for_drrg_with_the_reason(tmp_path: Path) -> None:
    res = _ocrserve("archive", str(FOLDER / f"{STEM}.py"), str(FOLDER / "checkpoint.pth"),
                    "--output-folder", str(tmp_path), "--runtime", "onnx")  # fmt: skip
    assert res.returncode == 2
    assert "DRRG is not exported" in res.stderr and "data-dependent" in res.stderr
    assert "--runtime torch" in res.stderr
    assert not list(tmp_path.iterdir())
