"""Token authorization on a real server (on by default, as TorchServe 0.11+).

ocrserve answers a failed check with 401 (TorchServe 0.12: 400) and leaves ``/ping`` open; see
``ocrserve/server/auth.py`` for why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
MESSAGE = "Token Authorization failed. Token either incorrect, expired, or not provided correctly"
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("auth"), "--models", "ppocr_rec", auth=True)
    yield from running(server)


def _keys(srv: ServerProcess) -> dict[str, Any]:
    return dict(json.loads((srv.cwd / "key_file.json").read_text()))


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _refused(resp: httpx.Response, message: str = MESSAGE) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json() == {"code": 401, "type": "InvalidKeyException", "message": message}


def _predict(srv: ServerProcess, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.put(
        srv.url + "/predictions/ppocr_rec", content=REC_IMG, headers=headers, timeout=60
    )


def test_key_file_in_torchserves_format(srv: ServerProcess) -> None:
    path = srv.cwd / "key_file.json"
    assert path.stat().st_mode & 0o777 == 0o600
    keys = _keys(srv)
    assert list(keys) == ["management", "inference", "API"]
    for name in ("management", "inference"):
        assert set(keys[name]) == {"key", "expiration time"}
        assert re.fullmatch(ISO_UTC, keys[name]["expiration time"])
    assert set(keys["API"]) == {"key"}
    values = [keys[n]["key"] for n in ("management", "inference", "API")]
    assert len(set(values)) == 3 and all(len(v) >= 32 for v in values)


def test_inference_needs_the_inference_key(srv: ServerProcess) -> None:
    keys = _keys(srv)
    inference = keys["inference"]["key"]
    _refused(_predict(srv))
    _refused(_predict(srv, _bearer("wrong")))
    _refused(_predict(srv, _bearer(keys["management"]["key"])))
    _refused(_predict(srv, _bearer(keys["API"]["key"])))
    for malformed in (
        "Bearer",
        f"Token {inference}",
        inference,
        f"Basic {inference}",
        f"Bearer {inference} extra",
        f"Bearer {inference}x",
        f"Bearer {inference[:-1]}",
    ):
        _refused(_predict(srv, {"Authorization": malformed}))
    _refused(httpx.get(srv.url + "/no/such/path"))  # the key is checked before routing
    resp = _predict(srv, _bearer(inference))
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
    resp = httpx.post(
        srv.url + "/predictions/ppocr_rec/1.0",
        files={"data": ("w.jpg", REC_IMG, "image/jpeg")},
        headers={"authorization": f"bearer {inference}"},  # the scheme is case-insensitive
    )
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT


def test_ping_and_api_description_need_no_key(srv: ServerProcess) -> None:
    resp = httpx.get(srv.url + "/ping")
    assert resp.status_code == 200 and resp.json() == {"status": "Healthy"}
    assert httpx.request("OPTIONS", srv.url + "/").status_code == 200
    assert httpx.get(srv.management_url + "/api-description").status_code == 200


def test_management_needs_the_management_key(srv: ServerProcess) -> None:
    keys = _keys(srv)
    mgmt = srv.management_url
    _refused(httpx.get(mgmt + "/models"))
    _refused(httpx.get(mgmt + "/models", headers=_bearer(keys["inference"]["key"])))
    _refused(httpx.get(mgmt + "/models", headers=_bearer(keys["API"]["key"])))
    _refused(httpx.put(mgmt + "/models/ppocr_rec?min_worker=1"))
    ok = _bearer(keys["management"]["key"])
    resp = httpx.get(mgmt + "/models", headers=ok)
    assert resp.status_code == 200
    assert resp.json()["models"][0]["modelName"] == "ppocr_rec"
    assert httpx.get(mgmt + "/models/ppocr_rec", headers=ok).json()[0]["modelVersion"] == "1.0"


def test_metrics_port_needs_no_key(srv: ServerProcess) -> None:
    resp = httpx.get(srv.metrics_url + "/metrics")
    assert resp.status_code == 200 and "ts_inference_requests_total" in resp.text


def test_token_api_rotates_the_inference_key(srv: ServerProcess) -> None:
    before = _keys(srv)
    old, api = before["inference"]["key"], before["API"]["key"]
    token_message = (
        "Token Authentication failed. Token either incorrect, expired, or not provided correctly"
    )
    _refused(httpx.get(srv.management_url + "/token?type=inference"), token_message)
    _refused(
        httpx.get(
            srv.management_url + "/token?type=inference",
            headers=_bearer(before["management"]["key"]),
        ),
        token_message,
    )
    resp = httpx.get(srv.management_url + "/token?type=bogus", headers=_bearer(api))
    assert resp.status_code == 400 and resp.json()["type"] == "BadRequestException"
    assert _keys(srv) == before  # refused calls change nothing

    resp = httpx.get(srv.management_url + "/token?type=inference", headers=_bearer(api))
    assert resp.status_code == 200, resp.text
    after = _keys(srv)
    new = after["inference"]["key"]
    assert new != old and old not in resp.text and new not in resp.text  # read from the file
    assert after["management"] == before["management"] and after["API"] == before["API"]
    assert (srv.cwd / "key_file.json").stat().st_mode & 0o777 == 0o600
    _refused(_predict(srv, _bearer(old)))
    assert _predict(srv, _bearer(new)).status_code == 200
    assert httpx.get(srv.url + "/token?type=inference", headers=_bearer(api)).status_code == 401


def test_token_api_rotates_the_management_key(srv: ServerProcess) -> None:
    before = _keys(srv)
    resp = httpx.get(
        srv.management_url + "/token?type=management", headers=_bearer(before["API"]["key"])
    )
    assert resp.status_code == 200, resp.text
    after = _keys(srv)
    assert after["inference"] == before["inference"]
    _refused(
        httpx.get(srv.management_url + "/models", headers=_bearer(before["management"]["key"]))
    )
    resp = httpx.get(srv.management_url + "/models", headers=_bearer(after["management"]["key"]))
    assert resp.status_code == 200


def test_key_file_is_removed_at_stop(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    server = ServerProcess(tmp_path, "--model-store", str(store), auth=True)
    try:
        server.wait_healthy()
        key_file = tmp_path / "key_file.json"
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = json.loads(key_file.read_text())["management"]["key"]
        resp = httpx.get(server.management_url + "/models", headers=_bearer(key))
        assert resp.status_code == 200 and resp.json() == {"models": []}
    finally:
        assert server.stop() == 0
    assert not key_file.exists()
    assert not list(tmp_path.glob(".key_file.json.*"))  # no temporary file left either


def test_disabled_token_auth_writes_no_key_file(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    server = ServerProcess(tmp_path, "--model-store", str(store))  # --disable-token-auth
    try:
        server.wait_healthy()
        assert httpx.get(server.management_url + "/models").status_code == 200
        assert not (tmp_path / "key_file.json").exists()
        # TorchServe answers /token with 404 when token authorization is off.
        assert httpx.get(server.management_url + "/token?type=inference").status_code == 404
    finally:
        assert server.stop() == 0
