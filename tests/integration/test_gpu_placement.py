"""Workers on GPUs (`number_of_gpu`, per-model `deviceType`) with a small MMOCR DBNet archive.

On a machine whose PyTorch sees a GPU the worker must run there and answer what the CPU answers
(within the DBNet parity tolerances); without one the worker must say it fell back to the CPU
and serve all the same. Both runs are real: `ocrserve archive`, then a server on loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.conftest import DEMO, REPO, ServerProcess, running

torch = pytest.importorskip("torch")

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tinydb.mar``: a small DBNet with seeded weights that finds text on the demo page."""
    from tests.unit.mmocr.test_mmocr_predictor import _det_config, _weights

    tmp = tmp_path_factory.mktemp("gpu")
    config = _det_config()
    (tmp / "tinydb.py").write_text("".join(f"{key} = {value!r}\n" for key, value in config.items()))
    torch.save({"state_dict": _weights(config)}, tmp / "tinydb.pth")
    out = tmp / "store"
    cmd = [sys.executable, "-m", "ocrserve", "archive", str(tmp / "tinydb.py")]
    cmd += [str(tmp / "tinydb.pth"), "--output-folder", str(out), "--model-name", "tinydb"]
    subprocess.run(cmd, check=True, capture_output=True, cwd=REPO)
    return out


def _serve(tmp: Path, store: Path, *extra: str) -> ServerProcess:
    return ServerProcess(tmp, "--model-store", str(store), "--models", "tinydb=tinydb.mar", *extra)


@pytest.fixture(scope="module")
def gpu_server(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Iterator[ServerProcess]:
    yield from running(_serve(tmp_path_factory.mktemp("gpu_srv"), store, "--number-of-gpu", "1"))


@pytest.fixture(scope="module")
def cpu_server(tmp_path_factory: pytest.TempPathFactory, store: Path) -> Iterator[ServerProcess]:
    models = json.dumps({"tinydb": {"1.0": {"deviceType": "cpu"}}})
    tmp = tmp_path_factory.mktemp("cpu_srv")
    yield from running(_serve(tmp, store, "--number-of-gpu", "1", "--models-json", models))


def _describe(server: ServerProcess) -> dict:  # type: ignore[type-arg]
    return httpx.get(f"{server.management_url}/models/tinydb", timeout=10).json()[0]


def _predict(server: ServerProcess) -> list[list[float]]:
    body = (DEMO / "demo_text_det.jpg").read_bytes()
    resp = httpx.put(f"{server.url}/predictions/tinydb", content=body, timeout=60)
    assert resp.status_code == 200, resp.text
    return list(resp.json()["boundary_result"])


def test_a_worker_gets_the_gpu_or_says_it_fell_back(
    gpu_server: ServerProcess, cpu_server: ServerProcess
) -> None:
    info = _describe(gpu_server)
    (worker,) = info["workers"]
    assert worker["gpu"] is CUDA
    assert info["deviceType"] == ("gpu" if CUDA else "cpu")
    assert worker["gpuUsage"] == ("gpuId::0" if CUDA else "N/A")
    model_log = (gpu_server.cwd / "logs" / "model_log.log").read_text()
    fell_back = "cuda:0 requested but PyTorch cannot use it: running on the CPU" in model_log
    assert fell_back is not CUDA
    assert f"on {'cuda:0' if CUDA else 'cpu'}" in gpu_server.log()
    # deviceType cpu in the models JSON keeps a model off the GPU whatever number_of_gpu says.
    cpu_info = _describe(cpu_server)
    assert cpu_info["deviceType"] == "cpu" and cpu_info["workers"][0]["gpu"] is False
    assert "requested but PyTorch" not in (cpu_server.cwd / "logs" / "model_log.log").read_text()


def test_gpu_and_cpu_workers_give_the_same_boundaries(
    gpu_server: ServerProcess, cpu_server: ServerProcess
) -> None:
    on_gpu, on_cpu = _predict(gpu_server), _predict(cpu_server)
    assert on_cpu, "the seeded model finds text on the demo page"
    assert len(on_gpu) == len(on_cpu)
    for a, b in zip(sorted(on_gpu), sorted(on_cpu)):
        assert len(a) == len(b)
        assert np.abs(np.subtract(a[:-1], b[:-1])).max() <= 0.5
        assert abs(a[-1] - b[-1]) <= 1e-4
