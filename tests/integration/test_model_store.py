"""Serving from a model store: good archives serve while bad ones are refused by name."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import httpx

from ocrserve.archive import MANIFEST_PATH
from ocrserve.builtin.store import build_bundled_archive
from tests.conftest import DEMO, ServerProcess

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()


def _hostile(store: Path, good: Path) -> None:
    """Archives that must each be refused with a reason naming them."""
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(store / "zipslip.mar", "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("../../escaped.txt", b"pwned")
    with zipfile.ZipFile(store / "nomanifest.mar", "w") as zf:
        zf.writestr("rec.onnx", b"x")
    with zipfile.ZipFile(store / "foreign.mar", "w") as zf:
        zf.writestr(
            MANIFEST_PATH,
            json.dumps(
                {
                    "model": {
                        "modelName": "foreign",
                        "serializedFile": "m.pt",
                        "handler": "handler.py",
                    }
                }
            ),
        )
        zf.writestr("m.pt", b"x")
        zf.writestr("handler.py", b"open('/tmp/ocrserve-pwned', 'w')")  # fmt: skip


def test_store_all_serves_good_and_refuses_bad(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    good = build_bundled_archive("ppocr_rec", store)
    shutil.copy(good, store / "reader.mar")  # the same model under a second file name
    _hostile(store, good)
    srv = ServerProcess(tmp_path, "--model-store", str(store), "--models", "all")
    try:
        srv.wait_healthy(healthy=False)
        log = srv.wait_log("ready (pid")
        assert "zipslip.mar: member '../../escaped.txt' points outside the archive" in log
        assert "nomanifest.mar: no MAR-INF/MANIFEST.json" in log
        assert "foreign.mar: handler 'handler.py' is Python code inside the archive" in log
        assert "Model version 1.0 is already registered for model ppocr_rec" in log
        assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/ocrserve-pwned").exists()
        # The good archive serves; /ping stays Unhealthy: configured models failed.
        resp = httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
        ping = httpx.get(srv.url + "/ping")
        assert ping.status_code == 500 and ping.json() == {"status": "Unhealthy"}
        bad = httpx.put(srv.url + "/predictions/zipslip", content=REC_IMG)
        assert bad.status_code == 503 and "points outside the archive" in bad.json()["message"]
    finally:
        assert srv.stop() == 0


def test_name_equals_file_and_bundled_fallback(tmp_path: Path) -> None:
    store = tmp_path / "store"
    build_bundled_archive("ppocr_rec", store)
    srv = ServerProcess(tmp_path, "--model-store", str(store),
                        "--models", "words=ppocr_rec.mar", "ppocr_det")  # fmt: skip
    try:
        srv.wait_healthy()
        assert httpx.put(srv.url + "/predictions/words", content=REC_IMG).json()["text"] == REC_TEXT
        det = httpx.put(
            srv.url + "/predictions/ppocr_det", content=(DEMO / "demo_text_det.jpg").read_bytes()
        )
        assert len(det.json()["boundary_result"]) == 6
        assert httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG).status_code == 404
    finally:
        assert srv.stop() == 0
