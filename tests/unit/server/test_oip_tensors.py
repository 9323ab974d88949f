"""The Open Inference Protocol codec: requests in (JSON and binary), tensors out."""

from __future__ import annotations

import base64
import gzip
import json
import struct
import zlib
from typing import Any

import pytest

from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.server.oip_tensors import (
    InferRequest,
    Tensor,
    check_outputs,
    decompress,
    deserialize_bytes,
    encode_response,
    parse_request,
    results_to_tensors,
    serialize,
    task_outputs,
)

PNG = b"\x89PNG\r\n\x1a\nfake"
JPG = b"\xff\xd8\xff\xe0fake"


def _json_body(data: list[Any], **over: Any) -> bytes:
    tensor = {"name": "image", "datatype": "BYTES", "shape": [len(data)], "data": data}
    doc: dict[str, Any] = {"inputs": [{**tensor, **over.pop("input", {})}], **over}
    return json.dumps(doc).encode()


def _binary_body(images: list[bytes], shape: list[int] | None = None) -> tuple[bytes, str]:
    raw = b"".join(struct.pack("<I", len(i)) + i for i in images)
    header = json.dumps({"inputs": [{
        "name": "image", "datatype": "BYTES", "shape": shape or [len(images)],
        "parameters": {"binary_data_size": len(raw)},
    }]}).encode()  # fmt: skip
    return header + raw, str(len(header))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_json_bytes_are_base64_images() -> None:
    req = parse_request(_json_body([_b64(PNG), _b64(JPG)], id="42"))
    assert req.images == [PNG, JPG]
    assert req.id == "42" and req.outputs is None and not req.binary_output


def test_nested_data_and_shape_b_by_1() -> None:
    body = _json_body([[_b64(PNG)], [_b64(JPG)]], input={"shape": [2, 1]})
    assert parse_request(body).images == [PNG, JPG]


def test_binary_extension() -> None:
    body, length = _binary_body([PNG, JPG])
    assert parse_request(body, length).images == [PNG, JPG]


def test_parameters_are_ignored_but_checked() -> None:
    body = _json_body([_b64(PNG)], parameters={"binary_data_output": True, "priority": 3})
    assert parse_request(body).binary_output
    with pytest.raises(InvalidInput, match="parameters"):
        parse_request(_json_body([_b64(PNG)], parameters=[1]))


def test_requested_outputs() -> None:
    body = _json_body(
        [_b64(PNG)],
        outputs=[{"name": "text"}, {"name": "score", "parameters": {"binary_data": True}}],
    )
    req = parse_request(body)
    assert req.outputs == {"text": False, "score": True}
    check_outputs(req, "textrecog")
    with pytest.raises(InvalidInput, match="Unknown output.*'text'"):
        check_outputs(req, "textdet")


@pytest.mark.parametrize(
    ("body", "length", "message"),
    [
        (b"{bad", None, "not valid JSON"),
        (b"[]", None, "must be a JSON object"),
        (b'{"inputs": []}', None, '"inputs" must be a list'),
        (b'{"id": 1, "inputs": []}', None, '"id" must be a string'),
        (_json_body([_b64(PNG)], input={"datatype": "FP32"}), None, "must be BYTES"),
        (_json_body([_b64(PNG)], input={"name": "x"}), None, "Unknown input 'x'"),
        (_json_body([_b64(PNG)], input={"shape": [2]}), None, "shape says 2 element"),
        (_json_body([_b64(PNG)], input={"shape": [1, 2]}), None, r"\[B\] or \[B, 1\]"),
        (_json_body([_b64(PNG)], input={"shape": [-1]}), None, "non-negative"),
        (_json_body([], input={"shape": [0]}), None, "holds no image"),
        (_json_body([3]), None, "must be a base64 string"),
        (_json_body(["!!not base64!!"]), None, "element 0.*not valid base64"),
        (_json_body([_b64(PNG)] * 2, input={"shape": [1]}), None, "1 element.*data holds 2"),
        (b'{"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1]}]}', None,
         "data holds 0"),
        (_json_body([_b64(PNG)], outputs=[{"n": 1}]), None, 'with a "name"'),
        (_json_body([_b64(PNG)], outputs=[{"name": "t", "parameters": {"binary_data": 1}}]), None,
         "true or false"),
        (b"{}", "x", "must be a number"),
        (b"{}", "\u00b2", "must be a number"),  # a digit to str.isdigit, not to int()
        (b"{}", "9" * 5000, "must be a number"),
        (b"{}", "99", "exceeds the body"),
    ],
)  # fmt: skip
def test_malformed_requests(body: bytes, length: str | None, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        parse_request(body, length)


def test_malformed_binary_requests() -> None:
    body, length = _binary_body([PNG, JPG])
    with pytest.raises(InvalidInput, match="binary_data_size is"):
        parse_request(body[:-1], length)  # the size says more than the body holds
    with pytest.raises(InvalidInput, match="binary_data_size is"):
        parse_request(body + b"x", length)
    with pytest.raises(InvalidInput, match="shape says 3 element"):
        parse_request(*_binary_body([PNG, JPG], shape=[3]))
    header = json.dumps({"inputs": [{"name": "image", "datatype": "BYTES", "shape": [1],
                                     "data": ["x"]}]}).encode()  # fmt: skip
    with pytest.raises(InvalidInput, match="no input has binary_data_size"):
        parse_request(header + b"tail", str(len(header)))
    bad = json.loads(body[: int(length)])
    bad["inputs"][0]["parameters"]["binary_data_size"] = "12"
    with pytest.raises(InvalidInput, match="non-negative integer"):
        parse_request(json.dumps(bad).encode())


def test_deserialize_bytes_refuses_truncated_elements() -> None:
    assert deserialize_bytes(struct.pack("<I", 2) + b"ab", 1) == [b"ab"]
    with pytest.raises(InvalidInput, match="declares 9 bytes"):
        deserialize_bytes(struct.pack("<I", 9) + b"ab", 1)
    with pytest.raises(InvalidInput, match="4-byte length"):
        deserialize_bytes(b"\x01\x00", 1)


def test_detection_tensors_concatenate_images_with_batch_index() -> None:
    results = [
        {"boundary_result": [[0, 0, 4, 0, 4, 2, 0, 2, 0.9], [1, 1, 2, 1, 2, 2, 1, 2, 0.8]]},
        {"boundary_result": []},
        {"boundary_result": [[0, 0, 6, 0, 6, 6, 3, 8, 0, 6, 0.7]]},  # a pentagon
    ]
    boxes, scores, index = results_to_tensors("textdet", results)
    assert boxes.shape == (3, 5, 2)
    assert boxes.data[:10] == [0, 0, 4, 0, 4, 2, 0, 2, 0, 2]  # the last vertex repeated
    assert scores.data == pytest.approx([0.9, 0.8, 0.7])
    assert index.data == [0, 0, 2]
    assert [t.name for t in (boxes, scores, index)] == [s.name for s in task_outputs("textdet")]


def test_empty_detections_are_zero_by_four_by_two() -> None:
    boxes, scores, index = results_to_tensors("textdet", [{"boundary_result": []}])
    assert boxes.shape == (0, 4, 2) and boxes.data == [] and index.shape == (0,)


def test_recognition_and_end_to_end_tensors() -> None:
    text, score = results_to_tensors("textrecog", [{"text": "ab", "score": 0.5}])
    assert (text.data, score.data, text.shape) == (["ab"], [0.5], (1,))
    line = {"box": [0, 0, 2, 0, 2, 1, 0, 1], "box_score": 0.9, "text": "hé", "text_score": 0.8}
    tensors = results_to_tensors("e2e", [{"result": []}, {"result": [line, line]}])
    assert [t.name for t in tensors] == [s.name for s in task_outputs("e2e")]
    by = {t.name: t for t in tensors}
    assert by["boxes"].shape == (2, 4, 2) and by["text"].data == ["hé", "hé"]
    assert by["score"].data == [0.8, 0.8] and by["batch_index"].data == [1, 1]


def test_serialize() -> None:
    assert serialize(Tensor("t", "BYTES", (2,), ["hé", b"\x00"])) == (
        struct.pack("<I", 3) + "hé".encode() + struct.pack("<I", 1) + b"\x00"
    )
    assert serialize(Tensor("s", "FP32", (2,), [1.5, 2.0])) == struct.pack("<2f", 1.5, 2.0)
    assert serialize(Tensor("i", "INT32", (1,), [7])) == struct.pack("<i", 7)


def test_encode_response_json_and_binary() -> None:
    tensors = results_to_tensors("textrecog", [{"text": "ab", "score": 0.5}])
    body, length = encode_response("rec", "1.0", InferRequest("7", [], None, False), tensors)
    assert length is None
    assert json.loads(body) == {"model_name": "rec", "model_version": "1.0", "id": "7", "outputs": [
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": ["ab"]},
        {"name": "score", "datatype": "FP32", "shape": [1], "data": [0.5]},
    ]}  # fmt: skip
    body, length = encode_response(
        "rec", "1.0", InferRequest(None, [], {"score": True, "text": False}, False), tensors
    )
    assert length is not None
    doc = json.loads(body[:length])
    assert [o["name"] for o in doc["outputs"]] == ["score", "text"]
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 4}
    assert body[length:] == struct.pack("<f", 0.5)
    body, length = encode_response("rec", "1.0", InferRequest(None, [], None, True), tensors)
    assert length is not None and body[length:] == serialize(tensors[0]) + serialize(tensors[1])


def test_decompress() -> None:
    body = b'{"inputs": []}' * 10
    assert decompress(body, None, 1000) == body
    assert decompress(body, "identity", 1000) == body
    assert decompress(gzip.compress(body), "gzip", 1000) == body
    assert decompress(zlib.compress(body), " Deflate", 1000) == body
    with pytest.raises(PayloadTooLarge, match="max_request_size"):
        decompress(gzip.compress(b"0" * 10_000), "gzip", 1000)  # a small bomb
    with pytest.raises(InvalidInput, match="not valid gzip"):
        decompress(body, "gzip", 1000)
    with pytest.raises(InvalidInput, match="complete"):
        decompress(gzip.compress(body)[:-4], "gzip", 1000)
    with pytest.raises(InvalidInput, match="not supported"):
        decompress(body, "br", 1000)
