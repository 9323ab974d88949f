"""Hostile and odd input on every route of a real server: each gets the right answer, and the
server stays up with the same workers.

One server (the bundled models, the model API on) takes the whole corpus; after every case
``/ping`` must say Healthy and each model's worker pids must be the ones it started with, so a
case that killed a worker fails even when its own answer looked right. Images are made here
with Pillow and numpy. Cases that show a server bug are kept, marked ``xfail(strict=True)`` with
the reason, so they turn into failures the day the bug is fixed and the mark is forgotten.
Request lines and headers no client library sends, and malformed Authorization headers, are
in test_hostile_protocol.py.
"""

from __future__ import annotations

import base64
import io
import os
import signal
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import DEMO, ServerProcess

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
MODELS = ("ocr", "ppocr_det", "ppocr_rec")
TIMEOUT = 120.0


# -- images, made in code -------------------------------------------------------------------


def _save(img: Image.Image, fmt: str, **options: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


@cache
def _word() -> Image.Image:
    """The demo word crop ("serving"), RGB."""
    img = Image.open(io.BytesIO(REC_IMG))
    img.load()
    return img.convert("RGB")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width x height`` RGB pixels."""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def blank(width: int, height: int, fmt: str = "PNG") -> bytes:
    return _save(Image.new("RGB", (width, height), "white"), fmt)


def word_as(mode: str, fmt: str = "PNG", **options: Any) -> bytes:
    return _save(_word().convert(mode), fmt, **options)


def word_16bit() -> bytes:
    gray = np.asarray(_word().convert("L")).astype(np.uint16) * 257
    img = Image.fromarray(gray)
    assert img.mode.startswith("I;16")
    return _save(img, "PNG")


def word_transparent_background() -> bytes:
    """Dark text opaque, background fully transparent *and black* underneath: only
    compositing on white (not dropping alpha) leaves a readable word."""
    rgb = np.asarray(_word())
    dark = rgb.mean(axis=2) < 128
    rgba = np.zeros((*rgb.shape[:2], 4), np.uint8)
    rgba[dark, :3] = rgb[dark]
    rgba[..., 3] = np.where(dark, 255, 0)
    return _save(Image.fromarray(rgba, "RGBA"), "PNG")


def word_exif_rotated(orientation: int = 6) -> bytes:
    """The word stored turned, with the EXIF orientation that turns it upright again."""
    turn = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(_word().transpose(turn), "JPEG", exif=exif, quality=95)


def word_animated_gif() -> bytes:
    """Frame 0 is the word, frame 1 a white page: only the first frame is read."""
    frames = [_word().convert("P"), Image.new("RGB", _word().size, "white").convert("P")]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def tiff_with_float_strip_offsets() -> bytes:
    """A 4 x 4 TIFF whose StripOffsets tag is typed FLOAT: Pillow raises TypeError on load."""
    data = bytearray(_save(Image.new("L", (4, 4), 128), "TIFF"))
    (ifd,) = struct.unpack_from("<I", data, 4)
    (count,) = struct.unpack_from("<H", data, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if struct.unpack_from("<H", data, entry)[0] == 273:  # StripOffsets
            struct.pack_into("<HI", data, entry + 2, 11, 1)  # type FLOAT, one value
    return bytes(data)


def eps() -> bytes:
    return (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n%%EndComments\n"
        b"newpath 0 0 moveto 10 10 lineto stroke showpage\n%%EOF\n"
    )


def multipart(parts: list[tuple[str, bytes]], boundary: str = "hostileboundary") -> bytes:
    out = b""
    for name, value in parts:
        head = f'Content-Disposition: form-data; name="{name}"; filename="x.png"'
        out += f"--{boundary}\r\n{head}\r\nContent-Type: image/png\r\n\r\n".encode()
        out += value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


MULTIPART = {"content-type": "multipart/form-data; boundary=hostileboundary"}
JSON = {"content-type": "application/json"}


# -- the corpus -----------------------------------------------------------------------------


def _is_word(body: Any) -> bool:
    return isinstance(body, dict) and body.get("text") == REC_TEXT


def _no_text(body: Any) -> bool:
    return body in ({"text": "", "score": 0.0}, {"boundary_result": []}, {"result": []})


@dataclass(frozen=True)
class Case:
    """One request and the answer it must get."""

    id: str
    port: str  # inference | management | metrics
    method: str
    path: str
    status: int
    type: str | None = None  # the error type of a 4xx/5xx answer
    content: Callable[[], bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    result: Callable[[Any], bool] | None = None  # checks a 200 JSON answer
    bug: str | None = None  # a known server bug: the case is xfail(strict=True)
    fixed: str | None = None  # a bug this case found, since fixed (kept as the case's reason)


def _rec(id: str, content: Callable[[], bytes], status: int = 200, **kw: Any) -> Case:
    kw.setdefault("type", None if status == 200 else _TYPES[status])
    kw.setdefault("result", _is_word if status == 200 else None)
    return Case(id, "inference", "PUT", "/predictions/ppocr_rec", status, content=content, **kw)


_TYPES = {
    400: "BadRequestException",
    404: "ModelNotFoundException",
    405: "MethodNotAllowedException",
    413: "RequestEntityTooLargeException",
}
BAD = "BadRequestException"
MNF = "ModelNotFoundException"
MNA = "MethodNotAllowedException"
RNF = "ResourceNotFoundException"

BODY_CASES = [
    _rec("empty-body", lambda: b"", 400),
    _rec("random-bytes", lambda: np.random.default_rng(8).bytes(4096), 400),
    _rec("nul-bytes", lambda: b"\0" * 1000, 400),
    _rec("text-not-image", lambda: b"this is not an image at all, only some text\n", 400),
    _rec("truncated-jpeg", lambda: truncated(REC_IMG), 400),
    _rec("truncated-png", lambda: truncated(word_as("RGB")), 400),
    _rec("png-header-only", lambda: word_as("RGB")[:33], 400),
    _rec("png-50000x50000-header", lambda: png_declaring(50000, 50000), 413),
    _rec("png-0x0-header", lambda: png_declaring(0, 0), 400),
    _rec("png-7000x7000-real", lambda: _save(Image.new("1", (7000, 7000)), "PNG"), 413),
    _rec("svg", lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><text>x</text></svg>', 400),
    _rec("pdf", lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", 400),
    _rec("eps-without-ghostscript", eps, 400),
    _rec(
        "tiff-float-strip-offsets",
        tiff_with_float_strip_offsets,
        400,
        fixed="imaging.decode lets Pillow's TypeError escape (it catches only OSError, "
        "ValueError, SyntaxError, EOFError); the worker reports InternalServerError -> 500",
    ),
    _rec("1x1", lambda: blank(1, 1), 200, result=_no_text),
    Case("det-1x1", "inference", "PUT", "/predictions/ppocr_det", 200,
         content=lambda: blank(1, 1), result=_no_text),
    Case("ocr-1x1", "inference", "POST", "/predictions/ocr", 200,
         content=lambda: blank(1, 1), result=_no_text),
    Case("det-10000x20", "inference", "PUT", "/predictions/ppocr_det", 200,
         content=lambda: blank(10000, 20), result=_no_text),
    Case("ocr-10000x20", "inference", "PUT", "/predictions/ocr", 200,
         content=lambda: blank(10000, 20), result=_no_text),
    Case("ocr-20x10000", "inference", "PUT", "/predictions/ocr", 200,
         content=lambda: blank(20, 10000), result=_no_text),
    _rec("rec-20x10000", lambda: blank(20, 10000), 200, result=_no_text),
    _rec("grayscale", lambda: word_as("L")),
    _rec("bilevel", lambda: word_as("1")),
    _rec("palette", lambda: word_as("P")),
    _rec("alpha-on-black-transparent", word_transparent_background),
    _rec("gray-alpha", lambda: word_as("LA")),
    _rec("16-bit", word_16bit),
    _rec("cmyk-jpeg", lambda: word_as("CMYK", "JPEG", quality=95)),
    _rec("exif-rotated-6", lambda: word_exif_rotated(6)),
    _rec("exif-rotated-8", lambda: word_exif_rotated(8)),
    _rec("animated-gif", word_animated_gif),
    _rec("tiff-lzw", lambda: word_as("RGB", "TIFF", compression="tiff_lzw")),
    _rec("webp", lambda: word_as("RGB", "WEBP", lossless=True)),
    _rec("bmp", lambda: word_as("RGB", "BMP")),
    # Content types that say something else than the body.
    _rec("png-body-as-text-plain", lambda: word_as("RGB"), headers={"content-type": "text/plain"}),
    _rec("jpeg-body-as-image-png", lambda: REC_IMG, headers={"content-type": "image/png"}),
    _rec(
        "image-as-form-urlencoded",
        lambda: REC_IMG,
        headers={"content-type": "application/x-www-form-urlencoded"},
    ),
    _rec("image-declared-json", lambda: REC_IMG, 400, headers=JSON),
    _rec("image-declared-multipart", lambda: REC_IMG, 400,
         headers={"content-type": "multipart/form-data"}),
    _rec("json-data-not-string", lambda: b'{"data": 5}', 400, headers=JSON),
    _rec("json-array", lambda: b"[1, 2, 3]", 400, headers=JSON),
    _rec("json-empty-object", lambda: b"{}", 400, headers=JSON),
    _rec(
        "json-nested-100000-deep",
        lambda: b"[" * 100_000,
        400,
        headers=JSON,
        fixed="inference._json_image catches only UnicodeDecodeError and JSONDecodeError; "
        "json.loads raises RecursionError on deep nesting -> 500 InternalServerException",
    ),
    _rec("json-base64-string", lambda: b'"' + base64.b64encode(REC_IMG) + b'"', headers=JSON),
    # Base64 text, raw and wrapped.
    _rec("base64-invalid-characters", lambda: b'{"data": "abc$%^"}', 400, headers=JSON),
    _rec("base64-bad-length", lambda: b"QUJDREVGR0", 400),
    _rec("base64-of-not-an-image", lambda: base64.b64encode(b"definitely not an image"), 400),
    _rec("data-uri-invalid", lambda: b"data:image/png;base64,@@@@not-base64@@@@", 400),
    _rec("data-uri-valid", lambda: b"data:image/jpeg;base64," + base64.b64encode(REC_IMG)),
    _rec("base64-urlsafe-unpadded", lambda: base64.urlsafe_b64encode(REC_IMG).rstrip(b"=")),
    # Multipart.
    _rec("multipart-200-parts", lambda: multipart([(f"f{i}", b"x") for i in range(200)]), 400,
         headers=MULTIPART),
    _rec("multipart-5000-data-parts", lambda: multipart([("data", REC_IMG[:100])] * 5000), 400,
         headers=MULTIPART),
    _rec("multipart-no-image-field", lambda: multipart([("other", REC_IMG)]), 400,
         headers=MULTIPART),
    _rec("multipart-unterminated", lambda: b"--hostileboundary\r\n", 400, headers=MULTIPART),
    _rec("multipart-data-field", lambda: multipart([("data", REC_IMG)]), headers=MULTIPART),
    _rec("multipart-over-max-request-size",
         lambda: multipart([("data", b"\0" * 7_000_000)]), 413, headers=MULTIPART),
    _rec("body-over-max-request-size", lambda: b"A" * 7_000_000, 413),
]  # fmt: skip

NAME_CASES = [
    Case("name-dotdot-slash", "inference", "PUT", "/predictions/..%2Fx", 404, MNF,
         content=lambda: REC_IMG),
    Case("name-nul", "inference", "PUT", "/predictions/%00", 404, MNF, content=lambda: REC_IMG),
    Case(
        "name-encoded-dotdot-slash",
        "inference", "PUT", "/predictions/%2e%2e%2f", 404, content=lambda: REC_IMG,
        fixed="Starlette's redirect_slashes answers a path ending in '/' with an empty 307 to "
        "the path without it (here /predictions/..), not TorchServe's JSON error; build the "
        "apps with a Router(redirect_slashes=False)",
    ),
    Case("name-trailing-slash", "inference", "PUT", "/predictions/ppocr_rec/", 404,
         content=lambda: REC_IMG,
         fixed="redirect_slashes: PUT /predictions/ppocr_rec/ is an empty 307, not JSON"),
    Case("name-unicode", "inference", "PUT", "/predictions/%C3%BCn%C3%AFc%C3%B8d%E2%82%AC",
         404, MNF, content=lambda: REC_IMG),
    Case("name-10kB", "inference", "PUT", "/predictions/" + "n" * 10_000, 404, MNF,
         content=lambda: REC_IMG),
    Case("name-shell", "inference", "PUT", "/predictions/%3Brm%20-rf%20%2Ftmp%3B", 404, MNF,
         content=lambda: REC_IMG),
    Case("version-unknown", "inference", "PUT", "/predictions/ppocr_rec/9.9", 404,
         "ModelVersionNotFoundException", content=lambda: REC_IMG),
    Case("version-nul", "inference", "PUT", "/predictions/ppocr_rec/%00", 404,
         "ModelVersionNotFoundException", content=lambda: REC_IMG),
    Case("name-too-many-segments", "inference", "PUT", "/predictions/a/b/c", 404, RNF,
         content=lambda: REC_IMG),
    Case("describe-nul", "management", "GET", "/models/%00", 404, MNF),
    Case("describe-dotdot", "management", "GET", "/models/..%2F..%2Fetc%2Fpasswd", 404),
    Case("describe-10kB", "management", "GET", "/models/" + "n" * 10_000, 404, MNF),
    Case("describe-unicode", "management", "GET", "/models/%E2%80%AE", 404, MNF),
]  # fmt: skip

METHOD_CASES = [
    Case("trace-ping", "inference", "TRACE", "/ping", 405, MNA),
    Case("post-ping", "inference", "POST", "/ping", 405, MNA),
    Case("patch-predictions", "inference", "PATCH", "/predictions/ocr", 405, MNA),
    Case("get-predictions", "inference", "GET", "/predictions/ppocr_rec", 405, MNA),
    Case("delete-api-description", "inference", "DELETE", "/api-description", 405, MNA),
    Case("unknown-path-inference", "inference", "GET", "/etc/passwd", 404, RNF),
    Case("trace-models", "management", "TRACE", "/models", 405, MNA),
    Case("patch-model", "management", "PATCH", "/models/ppocr_rec", 405, MNA),
    Case("post-set-default", "management", "POST", "/models/ppocr_rec/1.0/set-default", 405, MNA),
    Case("unknown-path-management", "management", "GET", "/predictions/ppocr_rec", 404, RNF),
    Case("post-metrics", "metrics", "POST", "/metrics", 405, MNA),
    Case("trace-metrics", "metrics", "TRACE", "/metrics", 405, MNA),
    Case("unknown-path-metrics", "metrics", "GET", "/ping", 404, RNF),
]  # fmt: skip


def _lists_models(body: Any) -> bool:
    return isinstance(body, dict) and {m["modelName"] for m in body["models"]} >= set(MODELS)


QUERY_CASES = [
    Case("limit-negative", "management", "GET", "/models?limit=-1", 200, result=_lists_models),
    Case("limit-huge", "management", "GET", "/models?limit=" + "9" * 40, 200,
         result=_lists_models),
    Case("limit-float", "management", "GET", "/models?limit=1e3", 200, result=_lists_models),
    Case("page-token-negative", "management", "GET", "/models?next_page_token=-1", 200,
         result=_lists_models),
    Case("page-token-huge", "management", "GET", "/models?next_page_token=" + "9" * 40, 200,
         result=lambda body: body == {"models": []}),
    Case("min-worker-abc", "management", "PUT", "/models/ppocr_rec?min_worker=abc", 400, BAD),
    Case("min-worker-negative", "management", "PUT", "/models/ppocr_rec?min_worker=-1", 400, BAD),
    Case("min-worker-float", "management", "PUT", "/models/ppocr_rec?min_worker=1.5", 400, BAD),
    Case("max-worker-abc", "management", "PUT", "/models/ppocr_rec?max_worker=abc", 400, BAD),
    Case("max-below-min", "management", "PUT", "/models/ppocr_rec?min_worker=2&max_worker=1",
         400, BAD),
    Case("synchronous-maybe", "management", "PUT",
         "/models/ppocr_rec?min_worker=1&synchronous=maybe", 400, BAD),
    Case("scale-unknown-model", "management", "PUT", "/models/nope?min_worker=1", 404, MNF),
    Case("set-default-unknown-version", "management", "PUT",
         "/models/ppocr_rec/9.9/set-default", 404, "ModelVersionNotFoundException"),
    Case("delete-unknown-model", "management", "DELETE", "/models/nope", 404, MNF),
    Case("delete-unknown-version", "management", "DELETE", "/models/ppocr_rec/9.9", 404,
         "ModelVersionNotFoundException"),
    Case("register-no-url", "management", "POST", "/models", 400, BAD),
    Case("register-workers-abc", "management", "POST",
         "/models?url=ppocr_rec.mar&initial_workers=abc", 400, BAD),
    Case("register-batch-size-zero", "management", "POST",
         "/models?url=ppocr_rec.mar&batch_size=0", 400, BAD),
    Case("register-batch-size-negative", "management", "POST",
         "/models?url=ppocr_rec.mar&batch_size=-5", 400, BAD),
    Case("register-timeout-float", "management", "POST",
         "/models?url=ppocr_rec.mar&response_timeout=1e9", 400, BAD),
    Case("register-synchronous-maybe", "management", "POST",
         "/models?url=ppocr_rec.mar&synchronous=maybe", 400, BAD),
    Case("register-url-dotdot", "management", "POST", "/models?url=../x.mar", 404, MNF),
    Case("register-url-encoded-dotdot", "management", "POST",
         "/models?url=..%2F..%2F..%2Fetc%2Fpasswd", 404, MNF),
    Case("register-url-backslash", "management", "POST", "/models?url=..%5Cx.mar", 404, MNF),
    Case("register-url-absolute", "management", "POST", "/models?url=/etc/passwd", 404, MNF),
    Case("register-url-file-scheme", "management", "POST",
         "/models?url=file:///etc/passwd", 404, MNF),
    Case("register-url-nul", "management", "POST", "/models?url=x%00.mar", 404, MNF),
    Case("register-url-not-allowed", "management", "POST",
         "/models?url=http://127.0.0.1:9/x.mar", 404, MNF),
    Case(
        "register-model-name-with-slash",
        "management", "POST", "/models?url=ppocr_rec.mar&model_name=../evil", 400, BAD,
        fixed="management.register takes model_name as given: '../evil' registers a model "
        "no URL can address or unregister (a path segment cannot hold '/'); validate "
        "names as torch-model-archiver does (^[A-Za-z0-9][A-Za-z0-9_.-]*$)",
    ),
    Case("metrics-name-nul", "metrics", "GET", "/metrics?name[]=%00", 200),
    Case("metrics-name-5kB", "metrics", "GET", "/metrics?name[]=" + "m" * 5000, 200),
]  # fmt: skip

CASES = BODY_CASES + NAME_CASES + METHOD_CASES + QUERY_CASES


def _params(cases: list[Case]) -> list[Any]:
    return [
        pytest.param(
            c,
            id=c.id,
            marks=[pytest.mark.xfail(strict=True, reason=f"BUG: {c.bug}")] if c.bug else [],
        )
        for c in cases
    ]


# -- the server -----------------------------------------------------------------------------


@dataclass
class Target:
    server: ServerProcess
    clients: dict[str, httpx.Client]
    pids: dict[str, list[int]]

    def worker_pids(self) -> dict[str, list[int]]:
        out = {}
        for name in MODELS:
            resp = self.clients["management"].get(f"/models/{name}")
            assert resp.status_code == 200, resp.text
            (desc,) = resp.json()
            assert all(w["status"] == "READY" for w in desc["workers"]), desc["workers"]
            out[name] = sorted(w["pid"] for w in desc["workers"])
        return out

    def assert_alive(self) -> None:
        assert self.server.proc.poll() is None, self.server.log()[-3000:]
        resp = self.clients["inference"].get("/ping")
        assert resp.status_code == 200 and resp.json() == {"status": "Healthy"}
        assert self.worker_pids() == self.pids, "a worker died or was replaced"


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = ServerProcess(tmp_path_factory.mktemp("hostile"), "--enable-model-api")
    clients: dict[str, httpx.Client] = {}
    try:
        server.wait_healthy()
        for port, url in (("inference", server.url), ("management", server.management_url),
                          ("metrics", server.metrics_url)):  # fmt: skip
            clients[port] = httpx.Client(base_url=url, timeout=TIMEOUT)
        tgt = Target(server, clients, {})
        tgt.pids = tgt.worker_pids()
        yield tgt
    finally:
        for c in clients.values():
            c.close()
        assert server.stop() == 0


def _check_answer(case: Case, resp: httpx.Response) -> None:
    assert resp.status_code == case.status, (resp.status_code, resp.text[:500])
    ctype = resp.headers.get("content-type", "")
    if case.port == "metrics" and case.status == 200:
        assert ctype.startswith("text/plain")
        return
    assert ctype.startswith("application/json"), (ctype, resp.text[:200])
    body = resp.json()
    if case.status >= 400:
        assert set(body) == {"code", "type", "message"}, body
        assert body["code"] == case.status and isinstance(body["message"], str)
        if case.type:
            assert body["type"] == case.type, body
    elif case.result is not None:
        assert case.result(body), body


@pytest.mark.parametrize("case", _params(CASES))
def test_hostile_request(target: Target, case: Case) -> None:
    content = case.content() if case.content else None
    resp = target.clients[case.port].request(
        case.method, case.path, content=content, headers=case.headers
    )
    try:
        _check_answer(case, resp)
    finally:
        target.assert_alive()


def test_exif_orientation_is_what_makes_the_rotated_word_readable(target: Target) -> None:
    """Control for the exif-rotated cases: without the EXIF tag the turned word is not read."""
    turned = _save(_word().transpose(Image.Transpose.ROTATE_90), "JPEG", quality=95)
    resp = target.clients["inference"].put("/predictions/ppocr_rec", content=turned)
    assert resp.status_code == 200 and resp.json()["text"] != REC_TEXT


# -- one management call that takes the server down -----------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        pytest.param("PUT", "/models/ppocr_rec?min_worker=10" + "0" * 12, id="scale"),
        pytest.param(
            "POST",
            "/models?url=ppocr_rec.mar&model_name=many&initial_workers=10" + "0" * 12,
            id="register",
        ),
    ],
)
def test_huge_worker_count_is_refused_and_server_stays_up(
    tmp_path: Path, method: str, path: str
) -> None:
    server = ServerProcess(tmp_path, "--models", "ppocr_rec", "--enable-model-api")
    try:
        server.wait_healthy()
        try:
            resp = httpx.request(method, server.management_url + path, timeout=3)
        except httpx.TimeoutException:
            pytest.fail("the call blocked the server")
        assert resp.status_code == 400, resp.text
        assert httpx.get(server.url + "/ping", timeout=3).status_code == 200
    finally:
        # SIGKILL: a blocked event loop never runs the SIGTERM handler. Workers see their
        # pipe close and exit on their own.
        if server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGKILL)
        server.stop()
