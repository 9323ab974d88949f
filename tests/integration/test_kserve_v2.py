"""The Open Inference Protocol (KServe v2) against real servers, driven by Triton's own client
(``tritonclient[http]``: BYTES inputs in JSON and with the binary tensor data extension) and
by plain HTTP for what a client would never send (malformed requests)."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import DEMO, ServerProcess, running

th = pytest.importorskip("tritonclient.http", reason="needs tritonclient[http] (the test extra)")

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
DET_IMG = (DEMO / "demo_text_det.jpg").read_bytes()


def _with_margin(image: bytes, margin: int = 24) -> bytes:
    """The word crop with a margin of its own border pixels: PP-OCRv6's detector finds no text
    that touches the image's edges (PP-OCRv4's did), and the page form is what detection is for."""
    import cv2

    img = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)
    padded = cv2.copyMakeBorder(img, margin, margin, margin, margin, cv2.BORDER_REPLICATE)
    return bytes(cv2.imencode(".png", padded)[1])


REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
DET_LINES = [
    line["text"] for line in json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
]
OUTPUTS = {
    "ppocr_det": ["boxes", "box_scores", "batch_index"],
    "ppocr_rec": ["text", "score"],
    "ocr": ["boxes", "box_scores", "text", "score", "batch_index"],
}


def _client(srv: ServerProcess, **kwargs: Any) -> Any:
    return th.InferenceServerClient(srv.url.removeprefix("http://"), network_timeout=120, **kwargs)


def _image_input(images: list[bytes], binary: bool) -> Any:
    """What a tritonclient user writes: raw bytes in binary, base64 text in JSON."""
    inp = th.InferInput("image", [len(images)], "BYTES")
    data = images if binary else [base64.b64encode(i) for i in images]
    inp.set_data_from_numpy(np.array(data, dtype=np.object_), binary_data=binary)
    return inp


def _error(resp: httpx.Response, status: int, match: str = "") -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert list(body) == ["error"] and match in body["error"], body
    return str(body["error"])


# -- health and metadata ----------------------------------------------------------------------


def test_server_health_and_metadata(server: ServerProcess) -> None:
    client = _client(server)
    assert client.is_server_live() and client.is_server_ready()
    meta = client.get_server_metadata()
    assert meta["name"] == "ocrserve" and "binary_tensor_data" in meta["extensions"]
    assert httpx.get(server.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(server.url + "/v2/health/ready").json() == {"ready": True}


@pytest.mark.parametrize("model", sorted(OUTPUTS))
def test_model_metadata_and_ready(server: ServerProcess, model: str) -> None:
    client = _client(server)
    assert client.is_model_ready(model) and client.is_model_ready(model, "1.0")
    meta = client.get_model_metadata(model)
    assert meta == client.get_model_metadata(model, "1.0")
    assert meta["name"] == model and meta["versions"] == ["1.0"] and meta["platform"]
    assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in meta["outputs"]] == OUTPUTS[model]
    for out in meta["outputs"]:
        assert -1 in out["shape"]


def test_unknown_model_and_version_are_404(server: ServerProcess) -> None:
    client = _client(server)
    assert not client.is_model_ready("nosuchmodel")
    _error(httpx.get(server.url + "/v2/models/nosuchmodel"), 404, "Model not found: nosuchmodel")
    _error(httpx.get(server.url + "/v2/models/ocr/versions/9.9/ready"), 404, "9.9")
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], "data": ["eA=="]}]}
    _error(httpx.post(server.url + "/v2/models/nosuchmodel/infer", json=body), 404)
    with pytest.raises(th.InferenceServerException, match="Model not found"):
        client.get_model_metadata("nosuchmodel")
    _error(httpx.get(server.url + "/v2/nothing"), 404)
    _error(httpx.delete(server.url + "/v2/models/ocr"), 405)


# -- inference with tritonclient --------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_recognition(server: ServerProcess, binary: bool) -> None:
    result = _client(server).infer("ppocr_rec", [_image_input([REC_IMG], binary)], request_id="7")
    assert result.get_response()["id"] == "7"
    assert result.get_response()["model_version"] == "1.0"
    assert [t.decode() for t in result.as_numpy("text")] == [REC_TEXT]
    score = result.as_numpy("score")
    assert score.dtype == np.float32 and score.shape == (1,) and 0 < score[0] <= 1


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_detection_batch(server: ServerProcess, binary: bool) -> None:
    """Two images in one request: boxes of both, concatenated, told apart by batch_index."""
    images = [DET_IMG, _with_margin(REC_IMG)]
    outputs = [th.InferRequestedOutput(n, binary_data=binary) for n in OUTPUTS["ppocr_det"]]
    result = _client(server).infer("ppocr_det", [_image_input(images, binary)], outputs=outputs)
    boxes, scores = result.as_numpy("boxes"), result.as_numpy("box_scores")
    index = result.as_numpy("batch_index")
    assert boxes.dtype == np.float32 and boxes.ndim == 3 and boxes.shape[1:] == (4, 2)
    assert len(boxes) == len(scores) == len(index)
    assert sorted(set(index.tolist())) == [0, 1]
    assert (index == 0).sum() == len(DET_LINES)  # one box per line of the demo
    assert ((scores > 0) & (scores <= 1)).all()
    assert (boxes[index == 1] < 211).all()  # the word image is 211 pixels wide


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_end_to_end(server: ServerProcess, binary: bool) -> None:
    result = _client(server).infer("ocr", [_image_input([DET_IMG, _with_margin(REC_IMG)], binary)])
    texts = [t.decode() for t in result.as_numpy("text")]
    index = result.as_numpy("batch_index").tolist()
    assert [t for t, i in zip(texts, index) if i == 1] == [REC_TEXT]
    assert len([i for i in index if i == 0]) == len(DET_LINES)
    assert result.as_numpy("boxes").shape == (len(texts), 4, 2)
    assert result.as_numpy("score").shape == result.as_numpy("box_scores").shape == (len(texts),)


def test_same_answers_as_torchserve_routes(server: ServerProcess) -> None:
    """The v2 tensors carry the numbers /predictions answers (one engine, one code path)."""
    ts = httpx.put(server.url + "/predictions/ocr", content=DET_IMG, timeout=120).json()["result"]
    result = _client(server).infer("ocr", [_image_input([DET_IMG], True)])
    assert [t.decode() for t in result.as_numpy("text")] == [line["text"] for line in ts]
    boxes = np.array([line["box"] for line in ts], dtype=np.float32).reshape(-1, 4, 2)
    np.testing.assert_allclose(result.as_numpy("boxes"), boxes)


def test_requested_outputs_subset_and_mixed_binary(server: ServerProcess) -> None:
    outputs = [th.InferRequestedOutput("score", binary_data=False), th.InferRequestedOutput("text")]
    result = _client(server).infer("ppocr_rec", [_image_input([REC_IMG], True)], outputs=outputs)
    response = result.get_response()
    assert [o["name"] for o in response["outputs"]] == ["score", "text"]
    assert "data" in response["outputs"][0] and "binary_data_size" in str(response["outputs"][1])
    assert result.as_numpy("text")[0].decode() == REC_TEXT


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(server: ServerProcess, algorithm: str) -> None:
    inputs = [_image_input([REC_IMG], True)]
    result = _client(server).infer("ppocr_rec", inputs, request_compression_algorithm=algorithm)
    assert result.as_numpy("text")[0].decode() == REC_TEXT


def test_parameters_do_not_break_a_request(server: ServerProcess) -> None:
    result = _client(server).infer(
        "ppocr_rec", [_image_input([REC_IMG], True)], parameters={"lang": "en", "n": 3}
    )
    assert result.as_numpy("text")[0].decode() == REC_TEXT


def test_plain_json_answer(server: ServerProcess) -> None:
    """No binary anywhere: a JSON body in, a JSON body out (what curl users see)."""
    body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1, 1],
                        "data": [[base64.b64encode(REC_IMG).decode()]]}]}  # fmt: skip
    resp = httpx.post(server.url + "/v2/models/ppocr_rec/versions/1.0/infer", json=body, timeout=60)
    assert resp.status_code == 200 and "inference-header-content-length" not in resp.headers
    assert resp.headers["content-type"] == "application/json"
    out = resp.json()
    assert out["model_name"] == "ppocr_rec" and "id" not in out
    assert out["outputs"][0] == {"name": "text", "datatype": "BYTES", "shape": [1],
                                 "data": [REC_TEXT]}  # fmt: skip


# -- malformed requests: 400 with {"error"}, never a 5xx --------------------------------------


def _tensor(**over: Any) -> dict[str, Any]:
    data = [base64.b64encode(REC_IMG).decode()]
    return {"name": "image", "datatype": "BYTES", "shape": [1], "data": data, **over}


def _binary(images: list[bytes], declared: int | None = None) -> tuple[bytes, dict[str, str]]:
    raw = b"".join(struct.pack("<I", len(i)) + i for i in images)
    header = _binary_header(len(images), len(raw) if declared is None else declared)
    return header + raw, {"Inference-Header-Content-Length": str(len(header))}


def _binary_header(count: int, size: int) -> bytes:
    params = {"binary_data_size": size}
    tensor = {"name": "image", "datatype": "BYTES", "shape": [count], "parameters": params}
    return json.dumps({"inputs": [tensor]}).encode()


MALFORMED_JSON = {
    "bad JSON": b'{"inputs": [',
    "not an object": b"[1, 2]",
    "missing inputs": b"{}",
    "empty inputs": b'{"inputs": []}',
    "two inputs": json.dumps({"inputs": [_tensor(), _tensor()]}).encode(),
    "wrong input name": json.dumps({"inputs": [_tensor(name="x")]}).encode(),
    "wrong datatype": json.dumps({"inputs": [_tensor(datatype="FP32", data=[1.0])]}).encode(),
    "shape and data disagree": json.dumps({"inputs": [_tensor(shape=[3])]}).encode(),
    "bad shape": json.dumps({"inputs": [_tensor(shape=[1, 2, 3])]}).encode(),
    "number in BYTES": json.dumps({"inputs": [_tensor(data=[5])]}).encode(),
    "not base64": json.dumps({"inputs": [_tensor(data=["%%%"])]}).encode(),
    "not an image": json.dumps({"inputs": [_tensor(data=["aGVsbG8gd29ybGQ="])]}).encode(),
    "unknown output": json.dumps({"inputs": [_tensor()], "outputs": [{"name": "x"}]}).encode(),
    "bad parameters": json.dumps({"inputs": [_tensor()], "parameters": "x"}).encode(),
    "not UTF-8": b'{"inputs": "\xff"}',
    "deep nesting": b'{"inputs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "huge shape": json.dumps({"inputs": [_tensor(shape=[10**30])]}).encode(),
    "id not a string": json.dumps({"id": 5, "inputs": [_tensor()]}).encode(),
}


def test_unknown_content_encoding_is_400(server: ServerProcess) -> None:
    resp = httpx.post(server.url + "/v2/models/ppocr_rec/infer", content=b"{}",
                      headers={"Content-Encoding": "br"})  # fmt: skip
    _error(resp, 400, "Content-Encoding 'br' is not supported")


@pytest.mark.parametrize("body", MALFORMED_JSON.values(), ids=MALFORMED_JSON.keys())
def test_malformed_json_requests_are_400(server: ServerProcess, body: bytes) -> None:
    resp = httpx.post(server.url + "/v2/models/ppocr_rec/infer", content=body, timeout=60)
    _error(resp, 400)


def test_malformed_binary_requests_are_400(server: ServerProcess) -> None:
    url = server.url + "/v2/models/ppocr_rec/infer"
    body, headers = _binary([REC_IMG], declared=len(REC_IMG) + 1000)  # beyond the body
    _error(httpx.post(url, content=body, headers=headers), 400, "binary_data_size")
    body, headers = _binary([REC_IMG])
    _error(httpx.post(url, content=body[:-10], headers=headers), 400, "binary_data_size")
    _error(httpx.post(url, content=body, headers={"Inference-Header-Content-Length": "9" * 9}), 400)
    _error(httpx.post(url, content=body, headers={"Inference-Header-Content-Length": "-3"}), 400)
    _error(httpx.post(url, content=body), 400, "not valid JSON")  # no header: binary as JSON
    raw = struct.pack("<I", 999) + b"short"  # an element longer than its tensor
    header = _binary_header(1, len(raw))
    resp = httpx.post(
        url, content=header + raw, headers={"Inference-Header-Content-Length": str(len(header))}
    )
    _error(resp, 400, "declares 999 bytes")


def test_a_bad_image_in_a_batch_names_it(server: ServerProcess) -> None:
    with pytest.raises(th.InferenceServerException, match="Image 1"):
        _client(server).infer("ppocr_rec", [_image_input([REC_IMG, b"not an image"], True)])


# -- auth, limits, metrics and readiness on a server of its own -------------------------------


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Token authorization on, small limits, batches of up to 4, one model to scale."""
    server = ServerProcess(
        tmp_path_factory.mktemp("kserve"), "--models", "ppocr_rec", "--max-request-size",
        "300000", "--max-image-pixels", "100000", "--batch-size", "4", "--max-batch-delay",
        "500", auth=True,
    )  # fmt: skip
    yield from running(server)


def _key(srv: ServerProcess, name: str) -> dict[str, str]:
    """Headers with a key: a new dict per call, as tritonclient adds its own headers to it."""
    keys = json.loads((srv.cwd / "key_file.json").read_text())
    return {"Authorization": f"Bearer {keys[name]['key']}"}


def test_token_authorization(srv: ServerProcess) -> None:
    assert httpx.get(srv.url + "/v2/health/live").status_code == 200  # probes need no key
    assert httpx.get(srv.url + "/v2/health/ready").status_code == 200
    for path in ("/v2", "/v2/models/ppocr_rec", "/v2/models/ppocr_rec/ready", "/v1/models"):
        resp = httpx.get(srv.url + path)
        _error(resp, 401, "Token Authorization failed")
        assert resp.headers["www-authenticate"] == "Bearer"
    with pytest.raises(th.InferenceServerException, match="Token Authorization failed"):
        _client(srv).infer("ppocr_rec", [_image_input([REC_IMG], True)])
    result = _client(srv).infer(
        "ppocr_rec", [_image_input([REC_IMG], True)], headers=_key(srv, "inference")
    )
    assert result.as_numpy("text")[0].decode() == REC_TEXT


def test_limits(srv: ServerProcess) -> None:
    client = _client(srv)
    big = [_image_input([REC_IMG] * 100, True)]  # 100 x 4 kB > max_request_size
    with pytest.raises(th.InferenceServerException, match="max_request_size") as err:
        client.infer("ppocr_rec", big, headers=_key(srv, "inference"))
    assert err.value.status() == "413"
    with pytest.raises(th.InferenceServerException, match="max_image_pixels") as err:
        client.infer("ppocr_rec", [_image_input([DET_IMG], False)], headers=_key(srv, "inference"))
    assert err.value.status() == "413"


def _requests_total(srv: ServerProcess) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(srv.metrics_url + "/metrics").text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "ts_inference_requests_total" and s.labels["model_name"] == "ppocr_rec"
    )


def test_metrics_count_v2_requests(srv: ServerProcess) -> None:
    before = _requests_total(srv)
    inputs = [_image_input([REC_IMG, REC_IMG], True)]
    _client(srv).infer("ppocr_rec", inputs, headers=_key(srv, "inference"))
    assert _requests_total(srv) == before + 1


def _batches(srv: ServerProcess) -> tuple[float, float]:
    """``ocrserve_batch_size`` of ppocr_rec: (batches run, images in them)."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(srv.metrics_url + "/metrics?name[]=ocrserve_batch_size").text
    found = {
        s.name.rsplit("_", 1)[1]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.labels.get("model_name") == "ppocr_rec" and not s.name.endswith("_bucket")
    }
    return found.get("count", 0.0), found.get("sum", 0.0)


def test_the_images_of_a_request_are_batched(srv: ServerProcess) -> None:
    """B images go to the engine at once: the worker gets them as one batch."""
    count, total = _batches(srv)
    inputs = [_image_input([REC_IMG] * 4, True)]
    result = _client(srv).infer("ppocr_rec", inputs, headers=_key(srv, "inference"))
    assert [t.decode() for t in result.as_numpy("text")] == [REC_TEXT] * 4
    assert _batches(srv) == (count + 1, total + 4)


def test_readiness_follows_the_workers(srv: ServerProcess) -> None:
    """Scaled to 0 (management API), the model and the server are not ready; infer is 503."""
    client, mgmt = _client(srv), _key(srv, "management")
    headers = _key(srv, "inference")  # httpx and the ready checks only: tritonclient adds to it
    scale = srv.management_url + "/models/ppocr_rec?synchronous=true&min_worker="
    assert httpx.put(scale + "0", headers=mgmt, timeout=60).status_code == 200
    try:
        assert client.is_server_live() and not client.is_server_ready()
        assert not client.is_model_ready("ppocr_rec", headers=headers)
        assert httpx.get(srv.url + "/v2/health/ready").json() == {"ready": False}
        resp = httpx.get(srv.url + "/v2/models/ppocr_rec/ready", headers=headers)
        assert resp.status_code == 503 and resp.json() == {"name": "ppocr_rec", "ready": False}
        body = {"inputs": [_tensor()]}
        resp = httpx.post(srv.url + "/v2/models/ppocr_rec/infer", json=body, headers=headers)
        _error(resp, 503, "no worker")
        _error(httpx.get(srv.url + "/v1/models/ppocr_rec", headers=headers), 503)
    finally:
        assert httpx.put(scale + "1", headers=mgmt, timeout=120).status_code == 200
    assert client.is_server_ready() and client.is_model_ready("ppocr_rec", headers=headers)
    result = client.infer("ppocr_rec", [_image_input([REC_IMG], True)], headers=headers)
    assert result.as_numpy("text")[0].decode() == REC_TEXT
