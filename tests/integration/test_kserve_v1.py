"""KServe's v1 protocol against the real server, over plain HTTP as KServe's docs show it."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
DET_IMG = (DEMO / "demo_text_det.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
DET_LINES = [
    line["text"] for line in json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _predict(server: ServerProcess, model: str, body: object) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/models/{model}:predict", json=body, timeout=120)


def test_list_and_ready(server: ServerProcess) -> None:
    models = httpx.get(server.url + "/v1/models").json()["models"]
    assert {"ppocr_det", "ppocr_rec", "ocr"} <= set(models)
    assert httpx.get(server.url + "/v1/models/ocr").json() == {"name": "ocr", "ready": True}
    resp = httpx.get(server.url + "/v1/models/nosuchmodel")
    assert resp.status_code == 404 and resp.json() == {"error": "Model not found: nosuchmodel"}


def test_recognition_batch(server: ServerProcess) -> None:
    resp = _predict(server, "ppocr_rec", {"instances": [{"b64": _b64(REC_IMG)}, _b64(REC_IMG)]})
    assert resp.status_code == 200, resp.text
    predictions = resp.json()["predictions"]
    assert [p["text"] for p in predictions] == [REC_TEXT, REC_TEXT]
    assert all(0 < p["score"] <= 1 for p in predictions)


def test_answers_are_torchserves(server: ServerProcess) -> None:
    """Each prediction is exactly what /predictions answers for the image."""
    for model in ("ppocr_det", "ocr"):
        ts = httpx.put(f"{server.url}/predictions/{model}", content=DET_IMG, timeout=120).json()
        resp = _predict(server, model, {"instances": [{"data": _b64(DET_IMG)}]})
        assert resp.json() == {"predictions": [ts]}
    (ocr,) = resp.json()["predictions"]
    assert [line["text"] for line in ocr["result"]] == DET_LINES


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"instances": []}, "instances"),
        ({"inputs": [1]}, "instances"),
        ([1], "instances"),
        ({"instances": [{"image": "x"}]}, "Instance 0"),
        ({"instances": [{"b64": _b64(REC_IMG)}, {"b64": "%%%"}]}, "Instance 1"),
        ({"instances": [{"b64": _b64(b"hello world")}]}, "not"),
    ],
)
def test_bad_requests_are_400(server: ServerProcess, body: object, message: str) -> None:
    resp = _predict(server, "ppocr_rec", body)
    assert resp.status_code == 400, resp.text
    assert list(resp.json()) == ["error"] and message in resp.json()["error"]
    resp = httpx.post(f"{server.url}/v1/models/ppocr_rec:predict", content=b"{no")
    assert resp.status_code == 400 and "not valid JSON" in resp.json()["error"]
    assert _predict(server, "nosuchmodel", {"instances": []}).status_code == 404
