"""The same .mar on a real TorchServe (ocrserve installed beside it) gives ocrserve's JSON.

Needs `torchserve` (0.12, Java 17) on PATH or at $OCRSERVE_TORCHSERVE with ocrserve installed
in its Python; skipped otherwise, except in CI, whose .ci/run installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ocrserve.archives.bundled import build_bundled_archive
from tests.conftest import DEMO, ServerProcess, free_port
from tests.prerequisites import tool_skip_reason

TORCHSERVE = os.environ.get("OCRSERVE_TORCHSERVE") or shutil.which("torchserve")
pytestmark = pytest.mark.skipif(
    not TORCHSERVE or not shutil.which("java"),
    reason=tool_skip_reason(
        "torchserve and java", "pip install torchserve==0.12.0 or set OCRSERVE_TORCHSERVE; Java 17"
    ),
)


def test_same_archive_same_answer_on_torchserve(tmp_path: Path) -> None:
    assert TORCHSERVE is not None
    store = tmp_path / "store"
    build_bundled_archive("ppocr_rec", store)
    build_bundled_archive("ppocr_det", store)
    ports = [free_port() for _ in range(3)]
    config = tmp_path / "config.properties"
    config.write_text(
        f"inference_address=http://127.0.0.1:{ports[0]}\n"
        f"management_address=http://127.0.0.1:{ports[1]}\n"
        f"metrics_address=http://127.0.0.1:{ports[2]}\n"
        "disable_token_authorization=true\ndefault_workers_per_model=1\n"
        "install_py_dep_per_model=false\n"
    )
    bindir = str(Path(TORCHSERVE).parent)
    # TMPDIR: TorchServe keeps its pid file there; ours, so `--stop` stops only this one.
    env = {
        **os.environ,
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "LOG_LOCATION": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [TORCHSERVE, "--start", "--foreground", "--ncs", "--ts-config", str(config),
         "--model-store", str(store), "--models", "ppocr_rec.mar", "ppocr_det.mar",
         "--disable-token-auth"],
        cwd=tmp_path, env=env, stdout=open(tmp_path / "ts.out", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    (tmp_path / "ours").mkdir()
    ours = ServerProcess(tmp_path / "ours", "--models", "ppocr_rec", "ppocr_det")
    try:
        ours.wait_healthy()
        url = f"http://127.0.0.1:{ports[0]}"
        deadline = time.monotonic() + 180
        ready = False
        while time.monotonic() < deadline and not ready:
            try:
                ready = httpx.put(f"{url}/predictions/ppocr_rec", content=b"x").status_code != 404
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert ready, (tmp_path / "ts.out").read_text()[-3000:]
        for model, image in (
            ("ppocr_rec", "demo_text_recog.jpg"),
            ("ppocr_det", "demo_text_det.jpg"),
        ):
            body = (DEMO / image).read_bytes()
            theirs = httpx.put(f"{url}/predictions/{model}", content=body, timeout=120)
            mine = httpx.put(f"{ours.url}/predictions/{model}", content=body, timeout=120)
            assert theirs.status_code == 200, theirs.text
            assert theirs.json() == mine.json()
    finally:
        ours.stop()
        # --foreground: wait until the Java frontend (and with it the workers) has exited.
        stop = [TORCHSERVE, "--stop", "--foreground"]
        subprocess.run(stop, cwd=tmp_path, env=env, capture_output=True, timeout=90)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
