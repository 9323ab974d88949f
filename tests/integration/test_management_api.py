"""The management API (port 8081) against TorchServe 0.12's transcript, on real servers.

Routes, status codes, JSON shapes and headers follow ``../shared/reference/torchserve/
transcript.md`` (numbers in comments are its cases). Archives are the bundled models written
into a model store; a second version of a model is the same archive with its manifest
rewritten.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.mar import MANIFEST_PATH, read_manifest, write_archive
from tests.conftest import DEMO, ENGINES, ServerProcess, engine_args, free_port, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()

NO_CACHE = {
    "pragma": "no-cache",
    "cache-control": "no-cache; no-store, must-revalidate, private",
    "expires": "Thu, 01 Jan 1970 00:00:00 UTC",
}
#: Describe fields the issue and the transcript name.
DESCRIBE_FIELDS = {
    "modelName", "modelVersion", "modelUrl", "runtime", "minWorkers", "maxWorkers", "batchSize",
    "maxBatchDelay", "responseTimeout", "startupTimeout", "deviceType", "loadedAtStartup",
    "workers", "jobQueueStatus",
}  # fmt: skip
ASYNC_STATUS = {"status": "Processing worker updates..."}


def _json(resp: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a TorchServe-shaped response, after checking status and headers."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert re.fullmatch(r"[0-9a-f-]{36}", resp.headers["x-request-id"])
    for name, value in NO_CACHE.items():
        assert resp.headers[name] == value, name
    return resp.json()


def _error(resp: httpx.Response, status: int, type_: str, message: str | None = None) -> str:
    body = _json(resp, status)
    assert set(body) == {"code", "type", "message"}
    assert body["code"] == status and body["type"] == type_, body
    if message is not None:
        assert body["message"] == message
    return str(body["message"])


def _archive(src: Path, name: str, version: str, out: Path) -> Path:
    """The archive ``src`` under another model name and version."""
    manifest = dataclasses.replace(read_manifest(src), model_name=name, model_version=version)
    with zipfile.ZipFile(src) as zf:
        files = {n: zf.read(n) for n in zf.namelist() if n != MANIFEST_PATH}
    return write_archive(out, manifest, files, force=True)


def _wait_workers(mgmt: str, model: str, ready: int, timeout: float = 30) -> dict[str, Any]:
    """Poll describe until exactly ``ready`` workers are READY; return the description."""
    deadline = time.monotonic() + timeout
    while True:
        (desc,) = httpx.get(f"{mgmt}/models/{model}").json()
        workers = desc["workers"]
        if len(workers) == ready and all(w["status"] == "READY" for w in workers):
            return dict(desc)
        assert time.monotonic() < deadline, desc
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, [p for p in pids if _alive(p)]
        time.sleep(0.05)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("store")
    rec = build_bundled_archive("ppocr_rec", folder)
    det = build_bundled_archive("ppocr_det", tmp_path_factory.mktemp("sources"))
    # "reader": version 1.0 recognises words, version 2.0 detects lines, so a prediction
    # shows which version answered.
    _archive(rec, "reader", "1.0", folder / "reader.mar")
    _archive(det, "reader", "2.0", folder / "reader_v2.mar")
    return folder


@pytest.fixture(scope="module", params=ENGINES)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, store: Path
) -> Iterator[ServerProcess]:
    """ppocr_rec loaded at start from the store; the model API on; loopback URLs allowed.
    Served by each engine in turn: the tests on this fixture are the Ray engine's conformance."""
    server = ServerProcess(
        tmp_path_factory.mktemp("mgmt"), "--model-store", str(store),
        "--models", "ppocr_rec.mar", "--enable-model-api",
        "--allowed-urls", r"http://127\.0\.0\.1:.*", *engine_args(request),
    )  # fmt: skip
    yield from running(server)


@pytest.fixture()
def mgmt(srv: ServerProcess) -> str:
    return srv.management_url


def _register(mgmt: str, query: str, status: int = 200) -> dict[str, Any]:
    return dict(_json(httpx.post(f"{mgmt}/models?{query}", timeout=60), status))


def _unregister(mgmt: str, name: str) -> None:
    body = _json(httpx.delete(f"{mgmt}/models/{name}", timeout=30))
    assert body == {"status": f'Model "{name}" unregistered'}


# -- API description, unknown paths and methods ---------------------------------------------


@pytest.mark.parametrize("method,path", [("OPTIONS", "/"), ("GET", "/api-description")])
def test_openapi_document(mgmt: str, method: str, path: str) -> None:
    doc = _json(httpx.request(method, mgmt + path))
    assert doc["openapi"].startswith("3.")
    assert {"/models", "/models/{model_name}", "/models/{model_name}/{model_version}"} <= set(
        doc["paths"]
    )


def test_unknown_paths_and_ports(srv: ServerProcess, mgmt: str) -> None:
    message = "Requested resource is not found, please refer to API document."
    _error(httpx.get(mgmt + "/no/such/path"), 404, "ResourceNotFoundException", message)  # 8
    _error(httpx.get(mgmt + "/ping"), 404, "ResourceNotFoundException", message)  # 2
    _error(
        httpx.post(mgmt + "/predictions/ppocr_rec", content=REC_IMG),
        404,
        "ResourceNotFoundException",
    )  # 23
    _error(httpx.get(srv.url + "/models"), 404, "ResourceNotFoundException", message)  # 7
    _error(httpx.request("PATCH", mgmt + "/models"), 405, "MethodNotAllowedException")


# -- list and describe ------------------------------------------------------------------------


def test_list_models_with_pagination(mgmt: str) -> None:
    names = ["page_a", "page_b", "page_c"]
    for name in names:
        _register(mgmt, f"url=ppocr_rec.mar&model_name={name}")
    try:
        everything = ["page_a", "page_b", "page_c", "ppocr_rec"]
        body = _json(httpx.get(mgmt + "/models"))  # 24
        assert body == {
            "models": [{"modelName": n, "modelUrl": "ppocr_rec.mar"} for n in everything]
        }
        first = _json(httpx.get(mgmt + "/models?limit=2"))  # 25
        assert list(first) == ["nextPageToken", "models"]
        assert first["nextPageToken"] == "2"
        assert [m["modelName"] for m in first["models"]] == everything[:2]
        for param in ("next_page_token", "nextPageToken"):
            rest = _json(httpx.get(f"{mgmt}/models?limit=2&{param}=2"))
            assert "nextPageToken" not in rest
            assert [m["modelName"] for m in rest["models"]] == everything[2:]
        middle = _json(httpx.get(mgmt + "/models?limit=1&next_page_token=1"))
        assert middle["nextPageToken"] == "2" and middle["models"][0]["modelName"] == "page_b"
        # TorchServe ignores a limit it cannot read (26).
        assert _json(httpx.get(mgmt + "/models?limit=abc")) == body
    finally:
        for name in names:
            _unregister(mgmt, name)


def _check_description(desc: dict[str, Any], name: str, version: str, url: str) -> None:
    assert DESCRIBE_FIELDS <= set(desc), DESCRIBE_FIELDS - set(desc)
    assert desc["modelName"] == name and desc["modelVersion"] == version
    assert desc["modelUrl"] == url and desc["runtime"] == "python"
    for key in ("minWorkers", "maxWorkers", "batchSize", "maxBatchDelay", "responseTimeout"):
        assert isinstance(desc[key], int) and not isinstance(desc[key], bool), key
    assert isinstance(desc["loadedAtStartup"], bool)
    queue = desc["jobQueueStatus"]
    assert set(queue) >= {"remainingCapacity", "pendingRequests"}
    for worker in desc["workers"]:
        assert {"id", "startTime", "status", "memoryUsage", "pid"} <= set(worker)
        assert isinstance(worker["id"], str) and worker["id"].isdigit()
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", worker["startTime"])
        assert worker["status"] == "READY"
        assert isinstance(worker["memoryUsage"], int) and worker["memoryUsage"] > 0
        assert isinstance(worker["pid"], int) and _alive(worker["pid"])


def test_describe_default_all_and_version(mgmt: str) -> None:
    (default,) = _json(httpx.get(mgmt + "/models/ppocr_rec"))  # 27: always a list
    _check_description(default, "ppocr_rec", "1.0", "ppocr_rec.mar")
    assert default["minWorkers"] == default["maxWorkers"] == 1
    assert default["batchSize"] == 1 and default["maxBatchDelay"] == 100
    assert default["responseTimeout"] == 120 and default["startupTimeout"] == 120
    assert default["loadedAtStartup"] is True and default["deviceType"] == "cpu"
    assert len(default["workers"]) == 1
    assert default["jobQueueStatus"] == {"remainingCapacity": 100, "pendingRequests": 0}
    for path in ("/models/ppocr_rec/all", "/models/ppocr_rec/1.0"):  # 28, 29
        (desc,) = _json(httpx.get(mgmt + path))
        assert desc["modelVersion"] == "1.0" and desc["workers"] == default["workers"]


def test_describe_unknown_model_and_version(mgmt: str) -> None:
    _error(
        httpx.get(mgmt + "/models/nosuchmodel"),
        404,
        "ModelNotFoundException",
        "Model not found: nosuchmodel",
    )  # 30
    _error(
        httpx.get(mgmt + "/models/ppocr_rec/9.9"),
        404,
        "ModelVersionNotFoundException",
        "Model version: 9.9 does not exist for model: ppocr_rec",
    )  # 31
    _error(httpx.get(mgmt + "/models/nosuchmodel/all"), 404, "ModelNotFoundException")


# -- register -------------------------------------------------------------------------------


def test_register_synchronous_asynchronous_and_without_workers(srv: ServerProcess) -> None:
    mgmt = srv.management_url
    try:
        body = _register(
            mgmt, "url=ppocr_rec.mar&model_name=rsync&initial_workers=1&synchronous=true"
        )
        assert body == {"status": 'Model "rsync" Version: 1.0 registered with 1 initial workers'}
        (desc,) = _json(httpx.get(mgmt + "/models/rsync"))  # ready when the answer came
        _check_description(desc, "rsync", "1.0", "ppocr_rec.mar")
        assert len(desc["workers"]) == 1 and desc["loadedAtStartup"] is False
        resp = httpx.put(srv.url + "/predictions/rsync", content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT

        body = _register(
            mgmt, "url=ppocr_rec.mar&model_name=rasync&initial_workers=1&synchronous=false", 202
        )  # 43
        assert body == ASYNC_STATUS
        _wait_workers(mgmt, "rasync", 1)
        resp = httpx.put(srv.url + "/predictions/rasync", content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT

        body = _register(mgmt, "url=ppocr_rec.mar&model_name=rzero")  # 39
        assert body == {
            "status": 'Model "rzero" Version: 1.0 registered with 0 initial workers. '
            "Use scale workers API to add workers for the model."
        }
        (desc,) = _json(httpx.get(mgmt + "/models/rzero"))  # 40
        assert desc["minWorkers"] == desc["maxWorkers"] == 0 and desc["workers"] == []
        _error(
            httpx.put(srv.url + "/predictions/rzero", content=REC_IMG),
            503,
            "ServiceUnavailableException",
        )  # 41
    finally:
        for name in ("rsync", "rasync", "rzero"):
            httpx.delete(f"{mgmt}/models/{name}", timeout=30)
    for name in ("rsync", "rasync", "rzero"):
        _error(httpx.get(f"{mgmt}/models/{name}"), 404, "ModelNotFoundException")


def test_register_refusals(mgmt: str) -> None:
    _error(
        httpx.post(mgmt + "/models?url=ppocr_rec.mar&initial_workers=1&synchronous=true"),
        409,
        "ConflictStatusException",
        "Model version 1.0 is already registered for model ppocr_rec",
    )  # 34
    _error(
        httpx.post(mgmt + "/models?url=reader.mar&model_name=ppocr_rec"),
        409,
        "ConflictStatusException",
    )  # 35
    _error(httpx.post(mgmt + "/models"), 400, "BadRequestException", "Parameter url is required.")
    message = _error(
        httpx.post(mgmt + "/models?url=missing.mar&synchronous=true"), 404, "ModelNotFoundException"
    )  # 37
    assert message.startswith("Model not found at: missing.mar")
    _error(
        httpx.post(mgmt + "/models?url=../x.mar"),
        404,
        "ModelNotFoundException",
        "Relative path is not allowed in url: ../x.mar",
    )  # 47
    _error(httpx.post(mgmt + "/models?url=/etc/passwd"), 404, "ModelNotFoundException")
    _error(
        httpx.post(mgmt + "/models?url=http://127.0.0.2:9/remote.mar&synchronous=true"),
        404,
        "ModelNotFoundException",
        "Given URL http://127.0.0.2:9/remote.mar does not match any allowed URL(s)",
    )  # 46
    # An allowed prefix does not let ".." climb out of it.
    message = _error(
        httpx.post(mgmt + "/models?url=http://127.0.0.1:9/a/../remote.mar"),
        404,
        "ModelNotFoundException",
    )
    assert "Relative path is not allowed" in message
    assert [m["modelName"] for m in httpx.get(mgmt + "/models").json()["models"]] == ["ppocr_rec"]


def test_register_download_failure_is_400(mgmt: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/remote.mar"  # allowed, but nothing listens there
    body = _json(httpx.post(f"{mgmt}/models?url={url}&synchronous=true", timeout=60), 400)
    assert body["code"] == 400
    assert body["message"] == f"Failed to download archive from: {url}"  # 45


def test_register_download_failure_type_is_torchserves(mgmt: str) -> None:
    """Transcript case 45: TorchServe names the type DownloadArchiveException."""
    url = f"http://127.0.0.1:{free_port()}/remote.mar"
    _error(
        httpx.post(f"{mgmt}/models?url={url}&synchronous=true", timeout=60),
        400,
        "DownloadArchiveException",
        f"Failed to download archive from: {url}",
    )


def test_register_reads_a_json_body(mgmt: str) -> None:
    """Transcript case 38: TorchServe takes the parameters from a JSON body too (as
    torchserve-client sends them)."""
    _error(
        httpx.post(mgmt + "/models", json={"url": "missing.mar"}),
        404,
        "ModelNotFoundException",
    )


# -- scale ----------------------------------------------------------------------------------


def test_scale_up_and_down_synchronously_and_not(mgmt: str) -> None:
    _register(mgmt, "url=ppocr_rec.mar&model_name=scaled&initial_workers=1&synchronous=true")
    try:
        body = _json(httpx.put(f"{mgmt}/models/scaled?min_worker=2&synchronous=true", timeout=60))
        assert body == {"status": "Workers scaled to 2 for model: scaled"}  # 52
        (desc,) = _json(httpx.get(f"{mgmt}/models/scaled"))
        _check_description(desc, "scaled", "1.0", "ppocr_rec.mar")
        assert desc["minWorkers"] == desc["maxWorkers"] == 2
        pids = [w["pid"] for w in desc["workers"]]
        assert len(set(pids)) == 2 and len({w["id"] for w in desc["workers"]}) == 2

        body = _json(httpx.put(f"{mgmt}/models/scaled?min_worker=1&synchronous=true", timeout=60))
        assert body == {"status": "Workers scaled to 1 for model: scaled"}  # 51
        (desc,) = _json(httpx.get(f"{mgmt}/models/scaled"))
        assert desc["minWorkers"] == desc["maxWorkers"] == 1 and len(desc["workers"]) == 1
        kept = desc["workers"][0]["pid"]
        _wait_gone([p for p in pids if p != kept])

        assert _json(httpx.put(f"{mgmt}/models/scaled?min_worker=3"), 202) == ASYNC_STATUS
        desc = _wait_workers(mgmt, "scaled", 3)
        assert desc["minWorkers"] == desc["maxWorkers"] == 3
        pids = [w["pid"] for w in desc["workers"]]
        body = _json(httpx.put(f"{mgmt}/models/scaled?min_worker=1&max_worker=2"), 202)  # 53
        assert body == ASYNC_STATUS
        desc = _wait_workers(mgmt, "scaled", 1)
        assert (desc["minWorkers"], desc["maxWorkers"]) == (1, 2)
        _wait_gone([p for p in pids if p != desc["workers"][0]["pid"]])

        _error(
            httpx.put(f"{mgmt}/models/scaled?min_worker=2&max_worker=1"),
            400,
            "BadRequestException",
            "max_worker cannot be less than min_worker.",
        )  # 54
        _error(
            httpx.put(f"{mgmt}/models/nosuchmodel?min_worker=1"),
            404,
            "ModelNotFoundException",
            "Model not found: nosuchmodel",
        )  # 55
        _error(
            httpx.put(f"{mgmt}/models/scaled/9.9?min_worker=1"),
            404,
            "ModelVersionNotFoundException",
        )
        (desc,) = _json(httpx.get(f"{mgmt}/models/scaled"))
        assert (desc["minWorkers"], desc["maxWorkers"], len(desc["workers"])) == (1, 2, 1)
    finally:
        httpx.delete(f"{mgmt}/models/scaled", timeout=30)


def test_scale_a_version_names_it(mgmt: str) -> None:
    """Transcript case 56: scaling one version says which."""
    body = _json(httpx.put(f"{mgmt}/models/ppocr_rec/1.0?min_worker=1&synchronous=true"))
    assert body == {"status": "Workers scaled to 1 for model: ppocr_rec, version: 1.0"}


# -- versions: set-default, unregister -------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_versions_set_default_and_unregister(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path, store: Path
) -> None:
    """Two versions of one model, from registration to an empty server (32-74)."""
    server = ServerProcess(
        tmp_path, "--model-store", str(store), "--enable-model-api", *engine_args(request, engine)
    )
    try:
        server.wait_healthy()
        mgmt, url = server.management_url, server.url
        assert _json(httpx.get(mgmt + "/models")) == {"models": []}  # nothing loaded at start
        for archive, version in (("reader.mar", "1.0"), ("reader_v2.mar", "2.0")):
            body = _register(mgmt, f"url={archive}&initial_workers=1&synchronous=true")
            assert body == {
                "status": f'Model "reader" Version: {version} registered with 1 initial workers'
            }  # 32, 33
        # The first version registered stays the default.
        assert _json(httpx.get(mgmt + "/models")) == {
            "models": [{"modelName": "reader", "modelUrl": "reader.mar"}]
        }
        (desc,) = _json(httpx.get(mgmt + "/models/reader"))
        assert desc["modelVersion"] == "1.0"
        every = _json(httpx.get(mgmt + "/models/reader/all"))  # 50
        assert sorted((d["modelVersion"], d["modelUrl"]) for d in every) == [
            ("1.0", "reader.mar"),
            ("2.0", "reader_v2.mar"),
        ]
        (v2,) = _json(httpx.get(mgmt + "/models/reader/2.0"))
        _check_description(v2, "reader", "2.0", "reader_v2.mar")
        pids = [d["workers"][0]["pid"] for d in every]
        assert "text" in httpx.put(url + "/predictions/reader", content=REC_IMG).json()

        _error(
            httpx.put(mgmt + "/models/reader/9.9/set-default"),
            404,
            "ModelVersionNotFoundException",
            "Model version 9.9 does not exist for model reader",
        )  # 61
        _error(
            httpx.put(mgmt + "/models/nosuchmodel/1.0/set-default"),
            404,
            "ModelNotFoundException",
            "Model not found: nosuchmodel",
        )  # 62
        body = _json(httpx.put(mgmt + "/models/reader/2.0/set-default"))  # 58
        assert body == {
            "status": 'Default version successfully updated for model "reader" to "2.0"'
        }
        (desc,) = _json(httpx.get(mgmt + "/models/reader"))  # 59
        assert (desc["modelVersion"], desc["modelUrl"]) == ("2.0", "reader_v2.mar")
        assert _json(httpx.get(mgmt + "/models"))["models"] == [
            {"modelName": "reader", "modelUrl": "reader_v2.mar"}
        ]
        # Predictions without a version now reach 2.0, the detector (60).
        resp = httpx.put(url + "/predictions/reader", content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and "boundary_result" in resp.json()
        resp = httpx.put(url + "/predictions/reader/1.0", content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT

        _error(
            httpx.delete(mgmt + "/models/reader"),
            403,
            "InvalidModelVersionException",
            "Cannot remove default version for model reader",
        )  # 68
        body = _json(httpx.delete(mgmt + "/models/reader/1.0"))  # 69
        assert body == {"status": 'Model "reader" unregistered'}
        _error(
            httpx.put(url + "/predictions/reader/1.0", content=REC_IMG),
            404,
            "ModelVersionNotFoundException",
        )
        assert [d["modelVersion"] for d in _json(httpx.get(mgmt + "/models/reader/all"))] == ["2.0"]
        body = _json(httpx.delete(mgmt + "/models/reader?synchronous=true"))  # 70, 73
        assert body == {"status": 'Model "reader" unregistered'}
        _error(
            httpx.delete(mgmt + "/models/nosuchmodel"),
            404,
            "ModelNotFoundException",
            "Model not found: nosuchmodel",
        )  # 71
        _error(
            httpx.put(url + "/predictions/reader", content=REC_IMG),
            404,
            "ModelNotFoundException",
            "Model not found: reader",
        )  # 72
        assert _json(httpx.get(mgmt + "/models")) == {"models": []}  # 74
        _wait_gone(pids)  # unregistering stops the workers
    finally:
        assert server.stop() == 0


# -- configuration: config.properties, TS_* variables, CLI, models JSON ----------------------


@pytest.fixture(scope="module", params=ENGINES)
def configured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Settings from all three sources; the model API left off (its default). Each engine."""
    tmp = tmp_path_factory.mktemp("configured")
    models = {
        "ppocr_det": {
            "1.0": {"minWorkers": 1, "maxWorkers": 2, "batchSize": 2, "maxBatchDelay": 7,
                    "responseTimeout": 11, "startupTimeout": 60},
        }
    }  # fmt: skip
    config = tmp / "config.properties"
    config.write_text(
        "# TorchServe's config.properties format\n"
        "enable_envvars_config=true\n"
        "load_models=ppocr_rec,ppocr_det\n"
        "job_queue_size=7\n"
        "batch_size=3\n"
        "max_batch_delay=42\n"
        "default_response_timeout=33\n"
        f"models={json.dumps(models)}\n"
        "cors_allowed_origin=https://example.com\n"
        "cors_allowed_methods=GET,POST,PUT\n"
        "number_of_netty_threads=4\n"
        "bogus_key=1\n"
    )
    server = ServerProcess(
        tmp, "--ts-config", str(config), "--batch-size", "5", *engine_args(request),
        env={"TS_JOB_QUEUE_SIZE": "9", "TS_MAX_BATCH_DELAY": "55"},
    )  # fmt: skip
    yield from running(server)


def test_config_precedence_cli_over_env_over_file(configured: ServerProcess) -> None:
    mgmt = configured.management_url
    (rec,) = _json(httpx.get(mgmt + "/models/ppocr_rec"))
    assert rec["batchSize"] == 5  # CLI over file
    assert rec["maxBatchDelay"] == 55  # TS_* over file (enable_envvars_config=true)
    assert rec["jobQueueStatus"]["remainingCapacity"] == 9  # TS_* over file
    assert rec["responseTimeout"] == 33  # file over default
    assert rec["loadedAtStartup"] is True


def test_models_json_sets_one_model(configured: ServerProcess) -> None:
    (det,) = _json(httpx.get(configured.management_url + "/models/ppocr_det"))
    assert (det["minWorkers"], det["maxWorkers"], len(det["workers"])) == (1, 2, 1)
    assert (det["batchSize"], det["maxBatchDelay"]) == (2, 7)
    assert (det["responseTimeout"], det["startupTimeout"]) == (11, 60)
    assert det["jobQueueStatus"]["remainingCapacity"] == 9


def test_unknown_config_key_is_a_warning(configured: ServerProcess) -> None:
    assert "unknown key 'bogus_key'" in configured.log()


def test_cors_headers_from_config(configured: ServerProcess) -> None:
    resp = httpx.get(
        configured.management_url + "/models", headers={"origin": "https://example.com"}
    )
    assert resp.status_code == 200
    assert resp.headers["access-control-allow-origin"] == "https://example.com"
    other = httpx.get(configured.management_url + "/models", headers={"origin": "https://evil"})
    assert "access-control-allow-origin" not in other.headers


def test_register_and_unregister_need_the_model_api(configured: ServerProcess) -> None:
    mgmt = configured.management_url
    _error(httpx.post(mgmt + "/models?url=ppocr_rec.mar"), 405, "MethodNotAllowedException")
    _error(httpx.delete(mgmt + "/models/ppocr_rec"), 405, "MethodNotAllowedException")
    _error(httpx.delete(mgmt + "/models/ppocr_rec/1.0"), 405, "MethodNotAllowedException")
    # The rest of the API stays: list, describe, scale, set-default.
    names = [m["modelName"] for m in _json(httpx.get(mgmt + "/models"))["models"]]
    assert names == ["ppocr_det", "ppocr_rec"]
    body = _json(httpx.put(mgmt + "/models/ppocr_rec/1.0/set-default"))
    assert body["status"].startswith("Default version successfully updated")
    body = _json(httpx.put(mgmt + "/models/ppocr_rec?min_worker=1&synchronous=true"))
    assert body == {"status": "Workers scaled to 1 for model: ppocr_rec"}
    resp = httpx.put(configured.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT


@pytest.mark.parametrize("engine", ENGINES)
def test_environment_overrides_the_command_line(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> None:
    """TorchServe's ConfigManager applies TS_* variables after the command line (its docs:
    "environment variables > command line arguments > configuration file")."""
    rec = build_bundled_archive("ppocr_rec", tmp_path / "src")
    for source in ("cli", "env"):
        _archive(rec, f"from_{source}", "1.0", tmp_path / f"store_{source}" / f"from_{source}.mar")
    config = tmp_path / "config.properties"
    config.write_text("enable_envvars_config=true\nload_models=all\n")
    server = ServerProcess(
        tmp_path, "--ts-config", str(config), "--model-store", str(tmp_path / "store_cli"),
        *engine_args(request, engine), env={"TS_MODEL_STORE": str(tmp_path / "store_env")},
    )  # fmt: skip
    try:
        server.wait_healthy()
        names = [
            m["modelName"] for m in _json(httpx.get(server.management_url + "/models"))["models"]
        ]
        assert names == ["from_env"]
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module", params=ENGINES)
def two_versions(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, store: Path
) -> Iterator[ServerProcess]:
    """Both versions of "reader" loaded at start, each with its own ``models`` entry; each
    engine."""
    models = {
        "reader": {
            "1.0": {"batchSize": 2, "maxBatchDelay": 11},
            "2.0": {"batchSize": 8, "maxBatchDelay": 22, "defaultVersion": True},
        }
    }
    server = ServerProcess(
        tmp_path_factory.mktemp("two_versions"), "--model-store", str(store),
        "--models", "reader.mar", "reader_v2.mar", "--models-json", json.dumps(models),
        *engine_args(request),
    )  # fmt: skip
    yield from running(server)


def test_models_json_settings_are_per_version(two_versions: ServerProcess) -> None:
    every = _json(httpx.get(two_versions.management_url + "/models/reader/all"))
    settings = {d["modelVersion"]: (d["batchSize"], d["maxBatchDelay"]) for d in every}
    assert settings == {"1.0": (2, 11), "2.0": (8, 22)}


def test_models_json_default_version(two_versions: ServerProcess) -> None:
    """TorchServe's ``"defaultVersion": true`` picks the default among loaded versions."""
    (desc,) = _json(httpx.get(two_versions.management_url + "/models/reader"))
    assert desc["modelVersion"] == "2.0"
