"""Serving from a model store: good archives serve while bad ones are refused by name."""

from __future__ import annotations

import json
import shutil
import stat
import zipfile
from pathlib import Path

import httpx

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.mar import MANIFEST_PATH
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
    with zipfile.ZipFile(good) as src:
        manifest = json.loads(src.read(MANIFEST_PATH))
        members = {i.filename: src.read(i) for i in src.infolist() if i.filename != MANIFEST_PATH}
    for name, extra in (("absolute", "/tmp/ocrserve-abs.txt"), ("symlink", "link.onnx")):
        with zipfile.ZipFile(store / f"{name}.mar", "w") as zf:
            zf.writestr(MANIFEST_PATH, json.dumps(manifest))
            for member, data in members.items():
                zf.writestr(member, data)
            info = zipfile.ZipInfo(extra)
            if name == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, b"/etc/passwd")
    with zipfile.ZipFile(store / "kie.mar", "w") as zf:
        zf.writestr(
            MANIFEST_PATH,
            json.dumps({**manifest, "ocrserve": {**manifest["ocrserve"], "task": "kie"}}),
        )
        for member, data in members.items():
            zf.writestr(member, data)
    with zipfile.ZipFile(store / "badjson.mar", "w") as zf:
        zf.writestr(MANIFEST_PATH, b"{ not json")
    # Two members that each claim 3 GB: refused from the headers, before extracting anything.
    with zipfile.ZipFile(store / "huge.mar", "w") as zf:
        zf.writestr(MANIFEST_PATH, json.dumps(manifest))
        zf.writestr("a.bin", b"a")
        zf.writestr("b.bin", b"b")
    data = bytearray((store / "huge.mar").read_bytes())
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        if bytes(data[at + 46 : at + 51]) in (b"a.bin", b"b.bin"):
            data[at + 24 : at + 28] = (3_000_000_000).to_bytes(4, "little")
        at = data.find(b"PK\x01\x02", at + 1)
    (store / "huge.mar").write_bytes(bytes(data))
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
        assert "absolute.mar: member '/tmp/ocrserve-abs.txt' has an absolute path" in log
        assert "symlink.mar: member 'link.onnx' is a symbolic link" in log
        assert "kie.mar: unknown task 'kie'" in log
        assert "badjson.mar: MAR-INF/MANIFEST.json is not valid JSON" in log
        assert "huge.mar: uncompressed size 6000000" in log and "exceeds the cap" in log
        assert not Path("/tmp/ocrserve-abs.txt").exists()
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
        assert (
            httpx.put(srv.url + "/predictions/words", content=REC_IMG, timeout=60).json()["text"]
            == REC_TEXT
        )
        det = httpx.put(
            srv.url + "/predictions/ppocr_det",
            content=(DEMO / "demo_text_det.jpg").read_bytes(),
            timeout=60,
        )
        assert len(det.json()["boundary_result"]) == 6
        assert (
            httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60).status_code
            == 404
        )
    finally:
        assert srv.stop() == 0
