"""The inference API on a real server (bundled PP-OCRv6 models) on a loopback port."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image
from shapely.geometry import Polygon

from tests.conftest import DEMO, ENGINES, ServerProcess, engine_args, running

DET_IMG = (DEMO / "demo_text_det.jpg").read_bytes()
REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
GT_LINES = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]


@pytest.fixture(scope="module", params=ENGINES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The bundled default models, served by each engine in turn (the same tests for both)."""
    srv = ServerProcess(
        tmp_path_factory.mktemp("server"), "--job-queue-size", "64", *engine_args(request)
    )
    yield from running(srv)


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def _error(resp: httpx.Response, status: int, type_: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"code", "type", "message"}
    assert body["code"] == status and body["type"] == type_
    return body


def _iou(a: list[float], b: list[float]) -> float:
    pa = Polygon(np.reshape(a, (-1, 2)))
    pb = Polygon(np.reshape(b, (-1, 2)))
    return float(pa.intersection(pb).area / pa.union(pb).area)


def test_ping_healthy(client: httpx.Client) -> None:
    resp = client.get("/ping")
    assert resp.status_code == 200
    assert resp.json() == {"status": "Healthy"}
    assert resp.headers["x-request-id"]


@pytest.mark.parametrize("method,path", [("OPTIONS", "/"), ("GET", "/api-description")])
def test_openapi_document_lists_the_routes(client: httpx.Client, method: str, path: str) -> None:
    resp = client.request(method, path)
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["openapi"].startswith("3.")
    v2_model = ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}")
    assert set(doc["paths"]) == {
        "/",
        "/api-description",
        "/ping",
        "/ocrserve/models",
        "/predictions/{model_name}",
        "/predictions/{model_name}/{model_version}",
        "/v2",
        "/v2/health/live",
        "/v2/health/ready",
        *(base + end for base in v2_model for end in ("", "/ready", "/infer")),
        "/v1/models",
        "/v1/models/{model_name}",
        "/v1/models/{model_name}:predict",
    }
    assert set(doc["paths"]["/predictions/{model_name}"]) == {"post", "put"}


def test_ocr_end_to_end_reads_every_demo_line(client: httpx.Client) -> None:
    resp = client.put("/predictions/ocr", content=DET_IMG)
    assert resp.status_code == 200, resp.text
    result = resp.json()["result"]
    texts = [r["text"] for r in result]
    assert sorted(texts) == sorted(line["text"] for line in GT_LINES)
    # Reading order: top to bottom.
    tops = [min(r["box"][1::2]) for r in result]
    assert tops == sorted(tops)
    for r in result:
        assert 0.5 <= r["box_score"] <= 1 and 0.5 <= r["text_score"] <= 1
        assert len(r["box"]) == 8


def test_det_boxes_every_line_clockwise(client: httpx.Client) -> None:
    resp = client.post(
        "/predictions/ppocr_det", content=DET_IMG, headers={"content-type": "image/jpeg"}
    )
    assert resp.status_code == 200, resp.text
    boxes = resp.json()["boundary_result"]
    assert len(boxes) == len(GT_LINES)
    for line in GT_LINES:
        gt = [c for p in line["points"] for c in p]
        best = max(_iou(b[:-1], gt) for b in boxes)
        assert best >= 0.5, (line["text"], best)
    for b in boxes:
        assert len(b) == 9 and 0 < b[-1] <= 1
        pts = np.reshape(b[:-1], (-1, 2))
        # Shoelace sum is positive for clockwise order in image coordinates (y down).
        area = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, 0)))
        assert area > 0
        assert pts[0][0] <= pts[1][0] and pts[0][1] <= pts[3][1]  # starts at top-left


def test_rec_reads_demo_word_exactly(client: httpx.Client) -> None:
    resp = client.put("/predictions/ppocr_rec", content=REC_IMG)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["text"] == REC_TEXT
    assert 0.8 < body["score"] <= 1.0


def test_explicit_version(client: httpx.Client) -> None:
    resp = client.put("/predictions/ppocr_rec/1.0", content=REC_IMG)
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT


@pytest.mark.parametrize("field", ["data", "file"])
def test_multipart_fields(client: httpx.Client, field: str) -> None:
    resp = client.post("/predictions/ppocr_rec", files={field: ("w.jpg", REC_IMG, "image/jpeg")})
    assert resp.status_code == 200, resp.text
    assert resp.json()["text"] == REC_TEXT


def test_multipart_text_fields_are_options(client: httpx.Client) -> None:
    """Text fields beside the image are request options (docs/options.md): an unknown one is a
    400 naming it; other files are ignored, as TorchServe's handlers ignored them."""
    resp = client.post(
        "/predictions/ppocr_rec",
        data={"note": "hello"},
        files={"data": ("w.jpg", REC_IMG, "image/jpeg")},
    )
    assert resp.status_code == 400 and "Unknown option 'note'" in resp.json()["message"]
    resp = client.post(
        "/predictions/ppocr_rec",
        data={"char_scores": "true"},
        files={"data": ("w.jpg", REC_IMG, "image/jpeg"), "other": ("x.txt", b"x")},
    )
    assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
    assert len(resp.json()["char_scores"]) == len(REC_TEXT)


def test_multipart_without_image_field(client: httpx.Client) -> None:
    resp = client.post("/predictions/ppocr_rec", files={"image": ("w.jpg", REC_IMG, "image/jpeg")})
    body = _error(resp, 400, "BadRequestException")
    assert "'data' or 'file'" in str(body["message"])


@pytest.mark.parametrize("form", ["plain", "data-uri", "json", "multipart-text"])
def test_base64_forms(client: httpx.Client, form: str) -> None:
    b64 = base64.b64encode(REC_IMG).decode()
    if form == "plain":
        resp = client.post(
            "/predictions/ppocr_rec", content=b64, headers={"content-type": "text/plain"}
        )
    elif form == "data-uri":
        resp = client.post("/predictions/ppocr_rec", content="data:image/jpeg;base64," + b64)
    elif form == "json":
        resp = client.post("/predictions/ppocr_rec", json={"data": b64})
    else:
        resp = client.post(
            "/predictions/ppocr_rec",
            data={"data": b64},
            files={"other": ("x.txt", b"x", "text/plain")},
        )
    assert resp.status_code == 200, resp.text
    assert resp.json()["text"] == REC_TEXT


def test_unknown_model(client: httpx.Client) -> None:
    body = _error(
        client.put("/predictions/nosuchmodel", content=REC_IMG), 404, "ModelNotFoundException"
    )
    assert body["message"] == "Model not found: nosuchmodel"


def test_unknown_version(client: httpx.Client) -> None:
    body = _error(
        client.put("/predictions/ocr/9.9", content=REC_IMG), 404, "ModelVersionNotFoundException"
    )
    assert body["message"] == "Model version: 9.9 does not exist for model: ocr"


def test_empty_body(client: httpx.Client) -> None:
    body = _error(client.post("/predictions/ocr", content=b""), 400, "BadRequestException")
    assert "empty" in str(body["message"])


@pytest.mark.parametrize("payload", [b"\x00\x01garbage\xff" * 50, b"not an image at all!"])
def test_undecodable_body(client: httpx.Client, payload: bytes) -> None:
    _error(client.post("/predictions/ppocr_det", content=payload), 400, "BadRequestException")


def test_invalid_base64(client: httpx.Client) -> None:
    body = _error(
        client.post("/predictions/ppocr_rec", json={"data": "abc$"}), 400, "BadRequestException"
    )
    assert "base64" in str(body["message"]).lower()


def test_truncated_image_is_400_and_server_survives(client: httpx.Client) -> None:
    _error(
        client.put("/predictions/ppocr_det", content=DET_IMG[: len(DET_IMG) // 3]),
        400,
        "BadRequestException",
    )
    assert client.put("/predictions/ppocr_rec", content=REC_IMG).status_code == 200


def test_body_over_max_request_size(client: httpx.Client) -> None:
    body = _error(
        client.post("/predictions/ocr", content=b"\0" * 7_000_000),
        413,
        "RequestEntityTooLargeException",
    )
    assert "max_request_size" in str(body["message"]) and "6553500" in str(body["message"])


def test_decompression_bomb_refused_before_decoding(client: httpx.Client) -> None:
    # A tiny PNG header declaring 50000 x 50000 pixels (2.5 gigapixels).
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000))
        + chunk(b"IEND", b"")
    )
    body = _error(
        client.post("/predictions/ppocr_det", content=png), 413, "RequestEntityTooLargeException"
    )
    assert "max_image_pixels" in str(body["message"])


def test_png_with_alpha_and_grayscale(client: httpx.Client) -> None:
    word = Image.open(io.BytesIO(REC_IMG))
    for mode in ("RGBA", "L", "P"):
        buf = io.BytesIO()
        word.convert(mode).save(buf, format="PNG")
        resp = client.post("/predictions/ppocr_rec", content=buf.getvalue())
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT, mode


def test_unknown_path_and_method(client: httpx.Client) -> None:
    body = _error(client.get("/no/such/path"), 404, "ResourceNotFoundException")
    assert body["message"] == "Requested resource is not found, please refer to API document."
    _error(client.get("/models"), 404, "ResourceNotFoundException")
    _error(client.delete("/predictions/ocr"), 405, "MethodNotAllowedException")


def test_concurrent_requests_all_answered(client: httpx.Client, server: ServerProcess) -> None:
    def one(i: int) -> int:
        if i % 2:
            r = httpx.put(f"{server.url}/predictions/ppocr_rec", content=REC_IMG, timeout=60)
            assert r.json()["text"] == REC_TEXT
        else:
            r = httpx.post(f"{server.url}/predictions/ppocr_det", content=b"junk", timeout=60)
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(one, range(24)))
    assert codes.count(200) == 12 and codes.count(400) == 12
