"""`ocrserve.client` against a real server on loopback ports, token authorization on: every
method, each input type, keys (given, from a key file, found as ``ocrserve key`` finds them,
rotated), errors as `ocrserve.errors` classes, retries (503 then 200, refused connections,
never for registration), `AsyncClient`, and ``ocrserve request``."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from ocrserve import AsyncClient, Client, errors
from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.mar import MANIFEST_PATH, read_manifest, write_archive
from ocrserve.cli import main
from ocrserve.client import Detection, EndToEnd, Recognition
from tests.conftest import DEMO, ServerProcess, free_port, running

pytestmark = pytest.mark.slow

REC_IMAGE = DEMO / "demo_text_recog.jpg"
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
DET_IMAGE = DEMO / "demo_text_det.jpg"
_DEMO_LINES = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
DET_LINES = [line["text"] for line in _DEMO_LINES]


def _renamed(src: Path, name: str, version: str, out: Path) -> None:
    manifest = dataclasses.replace(read_manifest(src), model_name=name, model_version=version)
    with zipfile.ZipFile(src) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n != MANIFEST_PATH}
    write_archive(out, manifest, files, force=True)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The three bundled models from a store that also holds ``reader`` 1.0 and 2.0 (both the
    recognizer); token authorization and the model API on."""
    store = tmp_path_factory.mktemp("store")
    for name in ("ocr", "ppocr_det", "ppocr_rec"):
        build_bundled_archive(name, store)
    _renamed(store / "ppocr_rec.mar", "reader", "1.0", store / "reader.mar")
    _renamed(store / "ppocr_rec.mar", "reader", "2.0", store / "reader_v2.mar")
    server = ServerProcess(
        tmp_path_factory.mktemp("client"), "--model-store", str(store),
        "--models", "ocr.mar", "ppocr_det.mar", "ppocr_rec.mar", "--enable-model-api",
        auth=True,
    )  # fmt: skip
    yield from running(server)


@pytest.fixture()
def client(srv: ServerProcess) -> Iterator[Client]:
    with Client(
        srv.url, key_file=srv.workdir / "key_file.json", management_url=srv.management_url
    ) as c:
        yield c


def _keys(srv: ServerProcess) -> dict[str, str]:
    doc = json.loads((srv.workdir / "key_file.json").read_text())
    return {name: entry["key"] for name, entry in doc.items()}


def _retries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ocrserve.client"]


# -- inference ------------------------------------------------------------------------------


def test_predict_each_task_typed_with_the_raw_json(client: Client) -> None:
    e2e = client.predict("ocr", DET_IMAGE)
    assert isinstance(e2e, EndToEnd)
    assert [line.text for line in e2e.lines] == DET_LINES
    assert e2e.text == "\n".join(DET_LINES)
    first = e2e.lines[0]
    assert len(first.box.points) == 4 and first.box.score == e2e.raw["result"][0]["box_score"]
    assert first.score == e2e.raw["result"][0]["text_score"]
    assert first.box.points[0] == tuple(e2e.raw["result"][0]["box"][:2])

    det = client.predict("ppocr_det", DET_IMAGE)
    assert isinstance(det, Detection) and len(det.boxes) == len(DET_LINES)
    assert [b.score for b in det.boxes] == [b[-1] for b in det.raw["boundary_result"]]
    assert all(len(b.points) == 4 for b in det.boxes)

    rec = client.predict("ppocr_rec", REC_IMAGE, version="1.0")
    assert isinstance(rec, Recognition)
    assert (rec.text, rec.score) == (REC_TEXT, rec.raw["score"]) and 0.9 < rec.score <= 1


def test_predict_takes_a_path_bytes_an_array_and_a_pil_image(client: Client) -> None:
    pil = Image.open(REC_IMAGE).convert("RGB")
    inputs = [
        str(REC_IMAGE),
        REC_IMAGE,
        REC_IMAGE.read_bytes(),
        bytearray(REC_IMAGE.read_bytes()),
        np.asarray(pil),  # H x W x 3 RGB
        np.asarray(pil.convert("L")),  # H x W
        pil,
        pil.convert("RGBA"),
    ]
    for image in inputs:
        result = client.predict("ppocr_rec", image)
        assert isinstance(result, Recognition) and result.text == REC_TEXT, type(image)
    with pytest.raises(errors.ConfigError, match="uint8"):
        client.predict("ppocr_rec", np.zeros((8, 8, 3), dtype=np.float32))
    with pytest.raises(errors.ConfigError, match="cannot send a dict"):
        client.predict("ppocr_rec", {})


def test_predict_many_keeps_order_and_reports_progress(client: Client) -> None:
    images = [REC_IMAGE, DET_IMAGE, REC_IMAGE.read_bytes(), b"not an image", REC_IMAGE]
    seen: list[tuple[int, int]] = []
    results = client.predict_many(
        "ppocr_rec", images, concurrency=3, progress=lambda d, t: seen.append((d, t)),
        return_exceptions=True,
    )  # fmt: skip
    assert sorted(seen) == [(n, 5) for n in range(1, 6)]
    assert [r.text for i, r in enumerate(results) if i in (0, 2, 4)] == [REC_TEXT] * 3
    assert isinstance(results[3], errors.BadRequest) and results[3].status == 400
    with pytest.raises(errors.BadRequest):
        client.predict_many("ppocr_rec", [REC_IMAGE, b"not an image"], concurrency=2)


def test_ping_and_the_served_models(client: Client) -> None:
    assert client.ping() == "Healthy"
    models = client.models()
    keys = ("modelName", "modelVersion", "task", "versions")
    assert [{k: m[k] for k in keys} for m in models] == [
        {"modelName": "ocr", "modelVersion": "1.0", "task": "e2e", "versions": ["1.0"]},
        {"modelName": "ppocr_det", "modelVersion": "1.0", "task": "textdet", "versions": ["1.0"]},
        {"modelName": "ppocr_rec", "modelVersion": "1.0", "task": "textrecog",
         "versions": ["1.0"]},
    ]  # fmt: skip
    assert set(models[2]["options"]["properties"]) == {"char_scores", "dpi", "pages", "page_image"}


def test_errors_are_the_classes_torchserves_type_names(client: Client) -> None:
    cases = [
        (lambda: client.predict("nope", REC_IMAGE), errors.ModelNotFound,
         "ModelNotFoundException", 404),
        (lambda: client.predict("ppocr_rec", REC_IMAGE, version="9.9"),
         errors.ModelVersionNotFound, "ModelVersionNotFoundException", 404),
        (lambda: client.predict("ppocr_rec", b""), errors.BadRequest, "BadRequestException", 400),
        (lambda: client.describe("nope"), errors.ModelNotFound, "ModelNotFoundException", 404),
    ]  # fmt: skip
    for call, cls, type_, status in cases:
        with pytest.raises(cls) as info:
            call()
        assert type(info.value) is cls
        assert (info.value.type, info.value.status) == (type_, status)
        assert info.value.message


# -- keys -----------------------------------------------------------------------------------


def test_keys_given_found_and_refused(srv: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = _keys(srv)
    with Client(srv.url, token=keys["inference"], management_token=keys["management"],
                management_url=srv.management_url) as c:  # fmt: skip
        assert c.predict("ppocr_rec", REC_IMAGE).text == REC_TEXT
        assert c.describe("ppocr_rec")[0]["modelName"] == "ppocr_rec"
    # No key given: found as `ocrserve key` finds it (here: ./key_file.json of the server).
    monkeypatch.chdir(srv.workdir)
    with Client(srv.url, management_url=srv.management_url) as c:
        assert c.keys.path == srv.workdir / "key_file.json"
        assert c.predict("ppocr_rec", REC_IMAGE).text == REC_TEXT
        assert c.list_models()[0]["modelName"] == "ocr"
    with Client(srv.url, token="x" * 43, retries=0) as c, pytest.raises(errors.InvalidToken) as e:
        c.predict("ppocr_rec", REC_IMAGE)
    assert (e.value.status, e.value.type) == (401, "InvalidKeyException")


def test_a_rotated_key_is_read_again_from_the_key_file(client: Client, srv: ServerProcess) -> None:
    assert client.predict("ppocr_rec", REC_IMAGE).text == REC_TEXT
    old = _keys(srv)["inference"]
    api = {"Authorization": f"Bearer {_keys(srv)['API']}"}
    httpx.get(f"{srv.management_url}/token?type=inference", headers=api).raise_for_status()
    assert _keys(srv)["inference"] != old
    assert client.predict("ppocr_rec", REC_IMAGE).text == REC_TEXT  # 401, reread, 200


# -- management -----------------------------------------------------------------------------


def test_register_describe_set_default_scale_unregister(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert client.register("reader.mar", initial_workers=1, synchronous=True) == (
        'Model "reader" Version: 1.0 registered with 1 initial workers'
    )
    client.register("reader_v2.mar", initial_workers=1, synchronous=True)
    try:
        assert {m["modelName"] for m in client.list_models()} >= {"reader", "ocr"}
        described = client.describe("reader", "all")
        assert [(d["modelVersion"], d["isDefault"]) for d in described] == [
            ("1.0", True), ("2.0", False)
        ]  # fmt: skip
        assert "2.0" in client.set_default("reader", "2.0")
        assert client.describe("reader")[0]["modelVersion"] == "2.0"
        assert client.predict("reader", REC_IMAGE, version="1.0").text == REC_TEXT
        assert client.scale("reader", 2, version="2.0") == (
            "Workers scaled to 2 for model: reader, version: 2.0"
        )
        assert len(client.describe("reader", "2.0")[0]["workers"]) == 2
        caplog.set_level(logging.WARNING, "ocrserve.client")
        with pytest.raises(errors.Conflict):  # registration is not idempotent: never retried
            client.register("reader.mar")
        with pytest.raises(errors.InvalidModelVersion):  # the default, while 1.0 remains
            client.unregister("reader", "2.0")
        assert _retries(caplog) == []
        assert client.unregister("reader", "1.0") == 'Model "reader" unregistered'
    finally:
        for version in ("1.0", "2.0"):
            try:
                client.unregister("reader", version)
            except errors.ModelNotFound:
                pass
    assert "reader" not in {m["modelName"] for m in client.list_models()}


# -- retries --------------------------------------------------------------------------------


def test_503_is_retried_until_the_model_has_a_worker_again(
    client: Client, srv: ServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "ocrserve.client")
    client.scale("ppocr_rec", 0)
    try:
        with Client(srv.url, key_file=srv.workdir / "key_file.json", retries=0) as once:
            with pytest.raises(errors.ServiceUnavailable) as info:
                once.predict("ppocr_rec", REC_IMAGE)
        assert (info.value.status, info.value.type) == (503, "ServiceUnavailableException")
        scaler = threading.Timer(1.0, lambda: client.scale("ppocr_rec", 1))
        started = time.monotonic()
        scaler.start()
        with Client(srv.url, key_file=srv.workdir / "key_file.json", retries=8,
                    backoff=0.25) as patient:  # fmt: skip
            assert patient.predict("ppocr_rec", REC_IMAGE).text == REC_TEXT
        scaler.join()
        assert time.monotonic() - started >= 1.0
        retried = _retries(caplog)
        assert retried and all("503 ServiceUnavailableException" in m for m in retried)
    finally:
        client.scale("ppocr_rec", 1)


def test_refused_connections_are_retried_a_bounded_number_of_times(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "ocrserve.client")
    port = free_port()
    url, mgmt = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{free_port()}"
    with Client(url, token="k" * 43, management_url=mgmt, retries=2, backoff=0.1) as c:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectError):
            c.predict("ppocr_rec", REC_IMAGE)
        assert time.monotonic() - started >= 0.1 + 0.2
        assert [m.split(";")[1].strip() for m in _retries(caplog)] == [
            "retry 1 of 2 in 0.1 s", "retry 2 of 2 in 0.2 s"
        ]  # fmt: skip
        caplog.clear()
        with pytest.raises(httpx.ConnectError):
            c.register("reader.mar")
        assert _retries(caplog) == []


# -- async ----------------------------------------------------------------------------------


def test_async_client(srv: ServerProcess, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "ocrserve.client")

    async def run() -> None:
        async with AsyncClient(srv.url, key_file=srv.workdir / "key_file.json",
                               management_url=srv.management_url) as c:  # fmt: skip
            assert await c.ping() == "Healthy"
            assert [m["modelName"] for m in await c.models()] == ["ocr", "ppocr_det", "ppocr_rec"]
            e2e = await c.predict("ocr", DET_IMAGE)
            assert isinstance(e2e, EndToEnd) and e2e.text.splitlines() == DET_LINES
            seen: list[int] = []
            many = await c.predict_many(
                "ppocr_rec", [REC_IMAGE, np.asarray(Image.open(REC_IMAGE)), b"junk"],
                concurrency=2, progress=lambda d, t: seen.append(d), return_exceptions=True,
            )  # fmt: skip
            assert [r.text for r in many[:2]] == [REC_TEXT] * 2
            assert isinstance(many[2], errors.BadRequest) and sorted(seen) == [1, 2, 3]
            assert len(await c.list_models()) == 3
            assert (await c.describe("ocr"))[0]["task"] == "e2e"
            assert "Workers scaled to 1" in await c.scale("ppocr_det", 1)
            assert "Default version" in await c.set_default("ppocr_det", "1.0")
            with pytest.raises(errors.ModelNotFound):
                await c.unregister("nope")
            with pytest.raises(errors.ModelNotFound):
                await c.register("missing.mar")
        async with AsyncClient(f"http://127.0.0.1:{free_port()}", token="k" * 43,
                               retries=1, backoff=0.05) as dead:  # fmt: skip
            with pytest.raises(httpx.ConnectError):
                await dead.predict("ocr", DET_IMAGE)

    asyncio.run(run())
    assert len(_retries(caplog)) == 1


# -- ocrserve request -----------------------------------------------------------------------


def test_request_command_text_json_and_out(
    srv: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ["--url", srv.url, "--key-file", str(srv.workdir / "key_file.json")]
    assert main(["request", "ocr", str(DET_IMAGE), *key]) == 0
    out = capsys.readouterr().out
    assert [line.split("\t")[0] for line in out.splitlines()] == DET_LINES

    args = ["request", "ppocr_rec", str(REC_IMAGE), str(DEMO), "--format", "json"]
    assert main([*args, "--out", str(tmp_path / "out"), *key]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert list(doc) == [str(REC_IMAGE), str(DEMO / "demo_text_det.jpg")]  # keyed by path
    assert doc[str(REC_IMAGE)]["text"] == REC_TEXT
    assert "3/3 images" in captured.err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["demo_text_det.json", "demo_text_recog-2.json", "demo_text_recog.json"]

    assert main(["request", "nope", str(REC_IMAGE), *key]) == 1
    assert "404 ModelNotFoundException: Model not found: nope" in capsys.readouterr().err
    assert main(["request", "ocr", str(tmp_path / "missing.jpg"), *key]) == 2
    assert "missing.jpg: no such image" in capsys.readouterr().err
    bad_key = ["--url", srv.url, "--key-file", str(tmp_path / "none.json")]
    assert main(["request", "ocr", str(DET_IMAGE), *bad_key]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_request_command_reads_a_folders_pdfs(
    srv: ServerProcess, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.documents import pdf_of, text_page

    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(pdf_of([text_page("ALPHA"), text_page("BRAVO")], dpi=72))
    (folder / "notes.txt").write_text("not an image")
    key = ["--url", srv.url, "--key-file", str(srv.workdir / "key_file.json")]
    assert main(["request", "ocr", str(folder), "--format", "json", *key]) == 0
    doc = json.loads(capsys.readouterr().out)
    pages = doc["pages"] if "pages" in doc else doc[str(folder / "a.pdf")]["pages"]
    assert [p["page"] for p in pages] == [1, 2]
    assert [" ".join(line["text"] for line in p["result"]) for p in pages] == ["ALPHA", "BRAVO"]
