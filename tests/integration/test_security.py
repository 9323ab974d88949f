"""Security properties on real servers: registration URLs, bind addresses, body limits,
image formats that would run an external program.

- Registration from a URL (``--enable-model-api``): only URLs that ``allowed_urls`` matches in
  full are fetched, and an allowed prefix cannot be climbed out of, with ``..`` in any
  spelling, with a redirect, or with a look-alike host. A local HTTP origin on loopback
  serves an archive inside the allowed folder and one outside it, and records every path it
  is asked for, so a refusal is also shown to have sent nothing. Like most static servers it
  decodes the path and resolves dot segments before looking a file up.
- Every port binds to 127.0.0.1 by default; checked from the listening sockets of a server
  started with no address option, in a network namespace of its own so the default ports are
  free (skipped where ``unshare -n`` is not allowed).
- ``max_request_size`` holds whatever the framing headers say: a Content-Length that lies,
  chunked transfer encoding, both at once, ``Expect: 100-continue``.
- An EPS body never reaches Ghostscript.

Archive safety (zip-slip, symlinks, sizes, foreign handlers, pickles) is covered by
tests/unit/archives/test_mar.py, tests/integration/test_model_store.py and
tests/integration/test_mmocr_archives.py; token authorization by test_token_auth.py.
"""

from __future__ import annotations

import json
import os
import posixpath
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from ocrserve.archives.bundled import build_bundled_archive
from tests.conftest import DEMO, REPO, ServerProcess, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
TIMEOUT = 60.0


# -- a model origin on loopback -------------------------------------------------------------


class Origin:
    """An HTTP server on 127.0.0.1 with an archive at ``/allowed/good.mar`` and the same
    archive outside the allowed folder at ``/secret.mar``; ``/allowed/redirect.mar``
    redirects to it. Paths are percent-decoded and dot segments resolved before lookup."""

    def __init__(self, archive: bytes) -> None:
        self.requested: list[str] = []
        files = {"/allowed/good.mar": archive, "/secret.mar": archive}
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                origin.requested.append(self.path)
                path = posixpath.normpath(urllib.parse.unquote(self.path.split("?")[0]))
                if path == "/allowed/redirect.mar":
                    self.send_response(302)
                    self.send_header("Location", "/secret.mar")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = files.get(path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origin]:
    archive = build_bundled_archive("ppocr_rec", tmp_path_factory.mktemp("origin"))
    server = Origin(archive.read_bytes())
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def fake_gs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a ``gs`` that records its arguments and the files they name (in
    ``gs-ran`` beside it), then fails; ``gs --version`` succeeds, as Pillow checks it first."""
    folder = tmp_path_factory.mktemp("fakebin")
    gs = folder / "gs"
    ran = folder / "gs-ran"
    gs.write_text(
        "#!/bin/sh\n"
        f'echo "gs $*" >> {ran}\n'
        'for arg in "$@"; do [ -f "$arg" ] && cat "$arg" >> ' + str(ran) + "; done\n"
        '[ "$1" = "--version" ] && { echo 10.0; exit 0; }\n'
        "exit 1\n"
    )
    gs.chmod(0o755)
    return folder


LIMIT = 100_000


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, origin: Origin, fake_gs: Path
) -> Iterator[ServerProcess]:
    """The model API on, only the origin's /allowed/ folder allowed, a model store, a small
    max_request_size, and a (fake) Ghostscript on the PATH."""
    allowed = rf"http://127\.0\.0\.1:{origin.port}/allowed/.*"
    store = tmp_path_factory.mktemp("store")
    build_bundled_archive("ppocr_rec", store)
    env = {"PATH": f"{fake_gs}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = ServerProcess(
        tmp_path_factory.mktemp("security"),
        "--model-store", str(store), "--models", "ppocr_rec.mar", "--enable-model-api",
        "--allowed-urls", allowed, "--max-request-size", str(LIMIT), env=env,
    )  # fmt: skip
    yield from running(server)


def _register(srv: ServerProcess, url: str, name: str) -> httpx.Response:
    query = urllib.parse.urlencode({"url": url, "model_name": name})
    return httpx.post(f"{srv.management_url}/models?{query}", timeout=TIMEOUT)


def _models(srv: ServerProcess) -> set[str]:
    body = httpx.get(srv.management_url + "/models", timeout=TIMEOUT).json()
    return {m["modelName"] for m in body["models"]}


def test_allowed_url_registers(srv: ServerProcess, origin: Origin) -> None:
    """The control: an archive inside the allowed folder is fetched and registered."""
    origin.requested.clear()
    resp = _register(srv, f"{origin.base}/allowed/good.mar", "remote_ok")
    try:
        assert resp.status_code == 200, resp.text
        assert origin.requested == ["/allowed/good.mar"]
    finally:
        httpx.delete(srv.management_url + "/models/remote_ok", timeout=TIMEOUT)


REFUSED_BEFORE_FETCHING = [
    ("outside-the-folder", "{base}/secret.mar"),
    ("literal-dotdot", "{base}/allowed/../secret.mar"),
    ("dot-then-dotdot", "{base}/allowed/./../secret.mar"),
    ("userinfo-look-alike", "http://127.0.0.1:{port}@127.0.0.2:{port}/allowed/good.mar"),
    ("allowed-host-as-userinfo", "http://allowed@127.0.0.1:{port}/allowed/good.mar"),
    ("upper-case-scheme", "HTTP://127.0.0.1:{port}/allowed/good.mar"),
    ("localhost-name", "http://localhost:{port}/allowed/good.mar"),
    ("other-loopback", "http://127.0.0.2:{port}/allowed/good.mar"),
    ("ipv6-loopback", "http://[::1]:{port}/allowed/good.mar"),
    ("hex-ip", "http://0x7f000001:{port}/allowed/good.mar"),
    ("decimal-ip", "http://2130706433:{port}/allowed/good.mar"),
    ("file-scheme", "file:///etc/passwd"),
    ("ftp-scheme", "ftp://127.0.0.1:{port}/allowed/good.mar"),
    ("gopher-scheme", "gopher://127.0.0.1:{port}/_GET%20/allowed/good.mar"),
    ("prefix-only", "{base}/allowed"),
    ("allowed-as-query", "{base}/secret.mar?/allowed/good.mar"),
]


@pytest.mark.parametrize("template", [pytest.param(t, id=i) for i, t in REFUSED_BEFORE_FETCHING])
def test_refused_before_anything_is_fetched(
    srv: ServerProcess, origin: Origin, template: str
) -> None:
    url = template.format(base=origin.base, port=origin.port)
    origin.requested.clear()
    resp = _register(srv, url, "must_not_exist")
    assert resp.status_code == 404, resp.text
    assert resp.json()["type"] == "ModelNotFoundException"
    assert origin.requested == []
    assert "must_not_exist" not in _models(srv)


_ENCODED_DOTS = (
    "BUG: management.Registrar._remote looks for '..' segments in the URL as given, but the "
    "origin decodes the path first: an encoded dot segment (%2e%2e, ..%2f) passes the check, "
    "matches the allowed prefix, and fetches a file outside it (TorchServe's allowed_urls "
    "bypass, GHSA-8fxr-qfr9-p34w). Fix: parse with urlsplit, percent-decode the path (until "
    "it no longer changes), refuse any '.'/'..' segment, encoded '/' or '\\\\', userinfo and "
    "fragments, and match allowed_urls against (and download) that normalised URL."
)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/allowed/%2e%2e/secret.mar", id="percent-encoded-dots"),
        pytest.param("/allowed/..%2fsecret.mar", id="encoded-slash"),
        pytest.param("/allowed/%2E%2E%2Fsecret.mar", id="upper-case-encoding"),
        pytest.param("/allowed/..%5csecret.mar", id="encoded-backslash"),
    ],
)
def test_encoded_dot_segments_cannot_leave_the_allowed_folder(
    srv: ServerProcess, origin: Origin, path: str
) -> None:
    origin.requested.clear()
    resp = _register(srv, origin.base + path, "escaped")
    try:
        assert resp.status_code == 404, resp.text
        assert origin.requested == []
    finally:
        httpx.delete(srv.management_url + "/models/escaped", timeout=TIMEOUT)


def test_redirect_out_of_the_allowed_folder_is_not_followed(
    srv: ServerProcess, origin: Origin
) -> None:
    origin.requested.clear()
    resp = _register(srv, f"{origin.base}/allowed/redirect.mar", "redirected")
    assert resp.status_code == 400, resp.text
    assert resp.json()["message"].startswith("Failed to download archive from:")
    assert origin.requested == ["/allowed/redirect.mar"]
    assert "redirected" not in _models(srv)


# -- default bind addresses, in a network namespace -----------------------------------------

_LISTENERS = textwrap.dedent(
    """
    import json, os, signal, subprocess, sys, time, urllib.request
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = sys.argv[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ocrserve", "start", "--foreground", "--disable-token-auth",
         "--models", "ppocr_rec", "--pid-file", tmp + "/pid", "--log-location", tmp + "/logs",
         *sys.argv[2:]],
        stdout=open(tmp + "/server.log", "wb"), stderr=subprocess.STDOUT, cwd=tmp)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen("http://127.0.0.1:8080/ping", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        inodes = set()
        for fd in os.listdir(f"/proc/{proc.pid}/fd"):
            try:  # a descriptor the server closes meanwhile (a file it read) is gone
                target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
            except FileNotFoundError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        listening = []
        for table in ("tcp", "tcp6"):
            for row in open(f"/proc/net/{table}").read().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                    addr, port = cols[1].split(":")
                    if table == "tcp":
                        host = ".".join(str(int(addr[i:i + 2], 16)) for i in (6, 4, 2, 0))
                    else:
                        host = "ipv6:" + addr
                    listening.append([host, int(port, 16)])
    finally:  # the server never outlives this script, even when a step above fails
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    print(json.dumps(sorted(listening)))
    """
)


def _in_own_network(tmp_path: Path, *server_args: str) -> tuple[list[list[object]], str]:
    """Start a server in a fresh network namespace; its listening sockets and its log."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace here (needs root or user namespaces)")
    script = tmp_path / "listeners.py"
    script.write_text(_LISTENERS)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        ["unshare", "-n", sys.executable, str(script), str(tmp_path), *server_args],
        capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    log = (tmp_path / "server.log").read_text(errors="replace")
    assert done.returncode == 0, done.stderr + log
    return json.loads(done.stdout.strip().splitlines()[-1]), log


def test_every_port_binds_to_loopback_by_default(tmp_path: Path) -> None:
    listening, _ = _in_own_network(tmp_path)
    assert listening == [["127.0.0.1", 8080], ["127.0.0.1", 8081], ["127.0.0.1", 8082]]


def test_wildcard_address_logs_a_warning(tmp_path: Path) -> None:
    listening, log = _in_own_network(tmp_path, "--inference-address", "http://0.0.0.0:8080")
    assert ["0.0.0.0", 8080] in listening
    assert any("WARNING" in line and "0.0.0.0" in line for line in log.splitlines()), log


# -- max_request_size against lying framing -------------------------------------------------


def _exchange(url: str, head: bytes, body_parts: list[bytes], read_after: float = 0.0) -> bytes:
    """Send a request head, then body parts (stopping quietly if the server closes), then
    read the answer until the server closes or 30 s pass."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        time.sleep(read_after)
        try:
            for part in body_parts:
                sock.sendall(part)
        except OSError:
            pass
        return _read_until_close(sock)


def _read_until_close(sock: socket.socket) -> bytes:
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return answer


def _head(extra: str, path: str = "/predictions/ppocr_rec") -> bytes:
    return f"PUT {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n".encode()


def _chunks(total: int, size: int = 16384) -> list[bytes]:
    out = []
    for start in range(0, total, size):
        n = min(size, total - start)
        out.append(f"{n:x}\r\n".encode() + b"A" * n + b"\r\n")
    return out + [b"0\r\n\r\n"]


def _answer_status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def _json_error(answer: bytes, status: int, type_: str) -> None:
    assert _answer_status(answer) == status, answer[:400]
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["code"] == status and body["type"] == type_, body


def test_chunked_body_over_the_limit_is_413(srv: ServerProcess) -> None:
    answer = _exchange(srv.url, _head("Transfer-Encoding: chunked\r\n"), _chunks(3 * LIMIT))
    _json_error(answer, 413, "RequestEntityTooLargeException")


def test_small_content_length_with_a_large_chunked_body_is_413(srv: ServerProcess) -> None:
    """Both framing headers: chunked wins (RFC 9112), and the streamed bytes are counted."""
    head = _head("Content-Length: 10\r\nTransfer-Encoding: chunked\r\n")
    answer = _exchange(srv.url, head, _chunks(3 * LIMIT))
    assert _answer_status(answer) in (400, 413), answer[:400]  # refused either way
    if _answer_status(answer) == 413:
        _json_error(answer, 413, "RequestEntityTooLargeException")


def test_content_length_that_understates_the_body(srv: ServerProcess) -> None:
    """Only the declared 10 bytes are the body (not an image: 400); the rest is never read
    as part of it."""
    answer = _exchange(srv.url, _head("Content-Length: 10\r\n"), [b"A" * (5 * LIMIT)])
    _json_error(answer, 400, "BadRequestException")


def test_declared_length_over_the_limit_is_refused_before_the_body(srv: ServerProcess) -> None:
    started = time.monotonic()
    host, port = srv.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(_head(f"Content-Length: {LIMIT + 1}\r\n"))  # and no body at all
        answer = _read_until_close(sock)
    assert time.monotonic() - started < 15
    _json_error(answer, 413, "RequestEntityTooLargeException")


def test_expect_continue_over_the_limit_is_413_without_the_body(srv: ServerProcess) -> None:
    host, port = srv.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(_head(f"Content-Length: {10 * LIMIT}\r\nExpect: 100-continue\r\n"))
        answer = _read_until_close(sock)
    _json_error(answer, 413, "RequestEntityTooLargeException")


def test_absurd_content_length_is_refused(srv: ServerProcess) -> None:
    answer = _exchange(srv.url, _head("Content-Length: " + "9" * 30 + "\r\n"), [b"x"])
    assert _answer_status(answer) in (400, 413), answer[:300]


def test_multipart_over_the_limit_in_chunks_is_413(srv: ServerProcess) -> None:
    boundary = "b0undary"
    part = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="data"; filename="x"\r\n\r\n'
        ).encode()
        + b"A" * (3 * LIMIT)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    chunks = [f"{len(part):x}\r\n".encode() + part + b"\r\n", b"0\r\n\r\n"]
    head = _head(
        f"Content-Type: multipart/form-data; boundary={boundary}\r\nTransfer-Encoding: chunked\r\n"
    )
    _json_error(_exchange(srv.url, head, chunks), 413, "RequestEntityTooLargeException")


def test_server_still_serves_after_the_limit_tests(srv: ServerProcess) -> None:
    resp = httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=TIMEOUT)
    assert resp.status_code == 200


# -- formats that would run an external program ---------------------------------------------


def test_eps_never_reaches_ghostscript(srv: ServerProcess, fake_gs: Path) -> None:
    eps = (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
        b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n"
    )
    resp = httpx.put(srv.url + "/predictions/ppocr_rec", content=eps, timeout=TIMEOUT)
    ran = fake_gs / "gs-ran"
    assert not ran.exists(), f"Ghostscript was run: {ran.read_text()!r}"
    assert resp.status_code == 400, resp.text
    assert "not a supported image" in resp.json()["message"]
