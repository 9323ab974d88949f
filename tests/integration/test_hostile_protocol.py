"""Hostile HTTP below the level of a client library, and malformed Authorization headers.

Request lines, header framing and header values that httpx refuses to send go over a plain
socket; each must get a 4xx (uvicorn's own plain-text 400 for what does not parse as HTTP,
TorchServe's JSON error for what does) and leave the server serving with the same workers.
A second server with token authorization on gets Authorization headers in every malformed
shape: each is a 401 ``InvalidKeyException`` and never a 500. (Unit-level cases of the header
parser are in tests/unit/server/test_auth.py.)
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
TIMEOUT = 120.0


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("hostile-protocol"), "--models", "ppocr_rec")
    yield from running(server)


def _worker_pids(server: ServerProcess) -> list[int]:
    (desc,) = httpx.get(server.management_url + "/models/ppocr_rec", timeout=TIMEOUT).json()
    return sorted(w["pid"] for w in desc["workers"] if w["status"] == "READY")


@pytest.fixture(scope="module")
def pids(plain: ServerProcess) -> list[int]:
    return _worker_pids(plain)


def _assert_alive(server: ServerProcess, pids: list[int]) -> None:
    assert server.proc.poll() is None, server.log()[-3000:]
    resp = httpx.get(server.url + "/ping", timeout=TIMEOUT)
    assert resp.status_code == 200 and resp.json() == {"status": "Healthy"}
    assert _worker_pids(server) == pids


def raw_request(url: str, data: bytes, timeout: float = 30.0) -> bytes:
    """Send bytes as they are; return what the server answers until it closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may close early; what it answered is still read below
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


RAW_CASES = [
    # (id, port, request bytes, acceptable statuses, JSON error required)
    ("unnormalised-dotdot-path", "inference",
     b"PUT /predictions/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Connection: close\r\n\r\nx", {404}, True),
    ("bare-lf-header-injection", "inference",
     b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\nX-Injected: 1\r\nConnection: close\r\n\r\n",
     {200, 400}, False),
    ("obs-fold-header", "management",
     b"GET /models HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\nConnection: close\r\n\r\n",
     {200, 400}, False),
    ("nul-in-header", "inference",
     b"GET /ping HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n",
     {200, 400}, False),
    ("garbage-request-line", "management", b"GARBAGE\r\n\r\n", {400}, False),
    ("non-ascii-path", "inference",
     b"PUT /predictions/\xff\xfe HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
     b"Connection: close\r\n\r\n", {400, 404}, False),
    ("header-100kB", "metrics",
     b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 100_000
     + b"\r\nConnection: close\r\n\r\n", {200, 400, 431}, False),
    ("content-length-negative", "inference",
     b"PUT /predictions/ppocr_rec HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n"
     b"Connection: close\r\n\r\nxx", {400}, False),
    ("content-length-twice", "inference",
     b"PUT /predictions/ppocr_rec HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Content-Length: 2\r\nConnection: close\r\n\r\nxx", {400}, False),
]  # fmt: skip


@pytest.mark.parametrize(
    "port,data,statuses,json_error",
    [pytest.param(*c[1:], id=c[0]) for c in RAW_CASES],
)
def test_raw_request(
    plain: ServerProcess,
    pids: list[int],
    port: str,
    data: bytes,
    statuses: set[int],
    json_error: bool,
) -> None:
    url = {"inference": plain.url, "management": plain.management_url,
           "metrics": plain.metrics_url}[port]  # fmt: skip
    answer = raw_request(url, data)
    try:
        assert _status(answer) in statuses, answer[:300]
        head, _, body = answer.partition(b"\r\n\r\n")
        assert b"x-injected" not in head.lower()
        if json_error:
            assert b"content-type: application/json" in head.lower()
            assert b'"code"' in body and b'"type"' in body and b'"message"' in body
    finally:
        _assert_alive(plain, pids)


def test_request_id_is_never_echoed(plain: ServerProcess) -> None:
    resp = httpx.get(plain.url + "/ping", headers={"x-request-id": "attacker-chosen"})
    assert resp.headers["x-request-id"] != "attacker-chosen"


# -- token authorization: malformed headers on a server with auth on ------------------------


@pytest.fixture(scope="module")
def authed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("hostile-auth"), "--models", "ppocr_rec",
                           auth=True)  # fmt: skip
    yield from running(server)


def _keys(server: ServerProcess) -> dict[str, str]:
    doc = json.loads((server.cwd / "key_file.json").read_text())
    return {name: entry["key"] for name, entry in doc.items()}


AUTH_CASES = [
    # (id, header value built from the keys, or None for no header)
    ("missing", lambda k: None),
    ("empty", lambda k: ""),
    ("scheme-only", lambda k: "Bearer"),
    ("basic-scheme", lambda k: "Basic " + base64.b64encode(b"admin:" + k["inference"].encode())
     .decode()),
    ("token-without-scheme", lambda k: k["inference"]),
    ("two-tokens", lambda k: f"Bearer {k['inference']} {k['inference']}"),
    ("token-prefix", lambda k: "Bearer " + k["inference"][:-1]),
    ("token-extended", lambda k: "Bearer " + k["inference"] + "x"),
    ("management-key-on-inference", lambda k: "Bearer " + k["management"]),
    ("api-key-on-inference", lambda k: "Bearer " + k["API"]),
    ("10kB-token", lambda k: "Bearer " + "a" * 10_000),
    ("quoted-token", lambda k: f'Bearer "{k["inference"]}"'),
    ("comma-list", lambda k: f"Bearer x, Bearer {k['inference']}"),
]  # fmt: skip


@pytest.mark.parametrize("make", [pytest.param(c[1], id=c[0]) for c in AUTH_CASES])
def test_malformed_authorization_is_401(
    authed: ServerProcess, make: Callable[[dict[str, str]], str | None]
) -> None:
    value = make(_keys(authed))
    headers = {} if value is None else {"authorization": value}
    resp = httpx.put(authed.url + "/predictions/ppocr_rec", content=REC_IMG, headers=headers,
                     timeout=TIMEOUT)  # fmt: skip
    assert resp.status_code == 401, resp.text
    assert resp.json()["type"] == "InvalidKeyException"
    assert resp.headers["www-authenticate"] == "Bearer"
    assert httpx.get(authed.url + "/ping").status_code == 200


@pytest.mark.parametrize(
    "header,statuses",
    [
        pytest.param(b"Authorization: Bearer \r\n", {401}, id="scheme-and-space"),
        pytest.param(b"Authorization: Bearer \xc3\xa9\xc3\xa9\r\n", {401}, id="utf8-token"),
        pytest.param(b"Authorization: Bearer \xff\xfe\r\n", {401}, id="latin1-token"),
        pytest.param(b"Authorization: Bearer KEY\x00\r\n", {400, 401}, id="nul-after-key"),
        pytest.param(b"Authorization: Bearer KEY\r\nAuthorization: Bearer x\r\n", {200},
                     id="right-then-wrong"),
        pytest.param(b"Authorization: Bearer x\r\nAuthorization: Bearer KEY\r\n", {401},
                     id="wrong-then-right"),
    ],
)  # fmt: skip
def test_raw_authorization_headers(
    authed: ServerProcess, header: bytes, statuses: set[int]
) -> None:
    """Headers no client library sends. Of two Authorization headers only the first is read
    (as Netty's ``headers().get`` does in TorchServe)."""
    header = header.replace(b"KEY", _keys(authed)["management"].encode())
    answer = raw_request(
        authed.management_url,
        b"GET /models HTTP/1.1\r\nHost: x\r\n" + header + b"Connection: close\r\n\r\n",
    )
    assert _status(answer) in statuses, answer[:300]
    assert httpx.get(authed.url + "/ping").status_code == 200


def test_token_in_query_string_is_not_a_key(authed: ServerProcess) -> None:
    key = _keys(authed)["management"]
    for query in (f"?token={key}", f"?authorization=Bearer%20{key}", f"?key={key}"):
        resp = httpx.get(authed.management_url + "/models" + query, timeout=TIMEOUT)
        assert resp.status_code == 401, query
