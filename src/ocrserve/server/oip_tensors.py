"""Open Inference Protocol (KServe v2) tensors: requests in, OCR results out. Pure: no I/O.

A request carries one BYTES input, ``image``, of shape ``[B]`` (``[B, 1]`` too): B encoded
images. In JSON each element is a string holding the image in base64 (JSON strings cannot hold
raw bytes, and tritonclient sends BYTES as UTF-8 strings); with the binary tensor data extension
(Triton's ``docs/protocol/extension_binary_data.md``: the ``Inference-Header-Content-Length``
header, ``binary_data_size`` parameters) each element is the image's raw bytes, prefixed by its
4-byte little-endian length as BYTES tensors are serialized.

Results become tensors per task (`task_outputs`): detections of all B images are concatenated,
with ``batch_index`` saying which image each one belongs to, so every output is a plain tensor.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ocrserve.errors import InvalidInput, PayloadTooLarge
from ocrserve.imaging import decode_base64

__all__ = [
    "DOCUMENTS_UNSUPPORTED",
    "INPUT_NAME",
    "InferRequest",
    "Tensor",
    "TensorSpec",
    "check_outputs",
    "decompress",
    "deserialize_bytes",
    "encode_response",
    "parse_request",
    "results_to_tensors",
    "serialize",
    "task_outputs",
]

INPUT_NAME = "image"
#: Bytes per element of the numeric datatypes the outputs use.
_FORMATS = {"FP32": "f", "INT32": "i"}


@dataclass(frozen=True)
class TensorSpec:
    """A tensor's metadata: name, datatype and shape (-1 for a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Tensor:
    """An output tensor: its data flattened in row-major order."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: list[Any]


@dataclass(frozen=True)
class InferRequest:
    """What a v2 inference request asks for."""

    id: str | None
    images: list[bytes]
    #: Output name -> whether it goes binary; None when the request names no outputs (all).
    outputs: dict[str, bool] | None
    #: ``binary_data_output``: every output binary unless it says otherwise.
    binary_output: bool


INPUT = TensorSpec(INPUT_NAME, "BYTES", (-1,))
_BOXES = TensorSpec("boxes", "FP32", (-1, -1, 2))
_BOX_SCORES = TensorSpec("box_scores", "FP32", (-1,))
_TEXT = TensorSpec("text", "BYTES", (-1,))
_SCORE = TensorSpec("score", "FP32", (-1,))
_BATCH_INDEX = TensorSpec("batch_index", "INT32", (-1,))
_OUTPUTS: dict[str, tuple[TensorSpec, ...]] = {
    "textdet": (_BOXES, _BOX_SCORES, _BATCH_INDEX),
    "textrecog": (_TEXT, _SCORE),
    "e2e": (_BOXES, _BOX_SCORES, _TEXT, _SCORE, _BATCH_INDEX),
}


#: Why a PDF or multi-page TIFF is refused here (one image, one set of tensors).
DOCUMENTS_UNSUPPORTED = (
    "PDFs and multi-page TIFFs have no tensor form in the Open Inference Protocol: send them "
    "to /predictions/{model} or /v1/models/{model}:predict."
)


def task_outputs(task: str) -> tuple[TensorSpec, ...]:
    """The output tensors of a task (`ocrserve.predictor.Task`)."""
    if task not in _OUTPUTS:
        raise ValueError(f"unknown task {task!r}: one of {', '.join(_OUTPUTS)}")
    return _OUTPUTS[task]


# -- requests ---------------------------------------------------------------------------------

#: ``Content-Encoding`` -> zlib's window bits ("deflate" is the zlib format, as tritonclient and
#: browsers send it).
_ENCODINGS = {"gzip": 31, "deflate": 15}


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """A body sent with ``Content-Encoding`` gzip or deflate (tritonclient's
    ``request_compression_algorithm``), inflated to at most ``limit`` bytes."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in _ENCODINGS:
        raise InvalidInput(f"Content-Encoding {encoding!r} is not supported: gzip, deflate, none.")
    inflater = zlib.decompressobj(_ENCODINGS[name])
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise InvalidInput(f"Body is not valid {name} data: {exc}") from None
    if len(data) > limit:
        raise PayloadTooLarge(
            f"Decompressed request body exceeds max_request_size ({limit} bytes)."
        )
    if not inflater.eof or inflater.unused_data:
        raise InvalidInput(f"Body is not one complete {name} stream.")
    return data


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object.")
    return value


def _flag(params: dict[str, Any], key: str, what: str) -> bool:
    value = params.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f'{what} parameter "{key}" must be true or false.')
    return value


def _split_header(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise InvalidInput(
            f"Inference-Header-Content-Length must be a number of bytes, not {header_length!r}."
        )
    size = int(text)
    if size > len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length ({size}) exceeds the body ({len(body)} bytes)."
        )
    return body[:size], body[size:]


def _flatten(data: Any) -> list[Any]:
    """Tensor data may be sent flat or nested (row-major); return it flat."""
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        item = next(stack[-1], _END)
        if item is _END:
            stack.pop()
        elif isinstance(item, list):
            stack.append(iter(item))
        else:
            flat.append(item)
    return flat


_END = object()


def _shape(value: Any) -> int:
    """The batch size a shape says: ``[B]`` or ``[B, 1]``."""
    if not isinstance(value, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in value
    ):
        raise InvalidInput(f'Input "{INPUT_NAME}": shape must be a list of non-negative integers.')
    if len(value) == 1 or (len(value) == 2 and value[1] == 1):
        return int(value[0])
    shown = value if len(value) <= 4 else [*value[:4], "..."]
    raise InvalidInput(f'Input "{INPUT_NAME}": shape must be [B] or [B, 1], not {shown}.')


def deserialize_bytes(raw: bytes, count: int) -> list[bytes]:
    """A BYTES tensor's binary form (each element: 4-byte little-endian length, then bytes)."""
    items: list[bytes] = []
    at = 0
    while at < len(raw):
        if at + 4 > len(raw):
            raise InvalidInput("Binary BYTES data ends inside an element's 4-byte length.")
        (size,) = struct.unpack_from("<I", raw, at)
        at += 4
        if at + size > len(raw):
            raise InvalidInput(
                f"Binary BYTES element {len(items)} declares {size} bytes; {len(raw) - at} remain."
            )
        items.append(raw[at : at + size])
        at += size
    if len(items) != count:
        raise InvalidInput(
            f'Input "{INPUT_NAME}": shape says {count} element(s), binary data holds {len(items)}.'
        )
    return items


def _decode_base64(text: str, index: int) -> bytes:
    try:
        return decode_base64(text.encode())
    except InvalidInput as exc:
        raise InvalidInput(f'Input "{INPUT_NAME}" element {index}: {exc.message}') from None


def parse_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """An inference request's body (and its ``Inference-Header-Content-Length``, if any)."""
    header, binary = _split_header(body, header_length)
    try:
        doc = json.loads(header)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, deep nesting
        raise InvalidInput(f"Inference request is not valid JSON: {exc}") from None
    doc = _object(doc, "The inference request")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput('"id" must be a string.')
    params = _object(doc.get("parameters"), '"parameters"')
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInput(f'"inputs" must be a list holding the input "{INPUT_NAME}".')
    if len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInput(f'Expected exactly one input, "{INPUT_NAME}"; got {len(inputs)}.')
    images = _parse_input(inputs[0], binary)
    return InferRequest(
        request_id,
        images,
        _parse_outputs(doc.get("outputs")),
        _flag(params, "binary_data_output", "Request"),
    )


def _parse_input(spec: dict[str, Any], binary: bytes) -> list[bytes]:
    name = spec.get("name")
    if name != INPUT_NAME:
        raise InvalidInput(f'Unknown input {name!r}: this model takes "{INPUT_NAME}" (BYTES, [B]).')
    if spec.get("datatype") != "BYTES":
        raise InvalidInput(
            f'Input "{INPUT_NAME}" must be BYTES (encoded images), not {spec.get("datatype")!r}.'
        )
    count = _shape(spec.get("shape"))
    if count == 0:
        raise InvalidInput(f'Input "{INPUT_NAME}" holds no image.')
    params = _object(spec.get("parameters"), f'Input "{INPUT_NAME}" "parameters"')
    size = params.get("binary_data_size")
    if size is None:
        if binary:
            raise InvalidInput(
                f"{len(binary)} byte(s) follow the JSON header but no input has binary_data_size."
            )
        data = _flatten(spec.get("data"))
        if "data" not in spec or len(data) != count:
            raise InvalidInput(
                f'Input "{INPUT_NAME}": shape says {count} element(s), data holds '
                f"{len(data) if 'data' in spec else 0}."
            )
        for i, item in enumerate(data):
            if not isinstance(item, str):
                raise InvalidInput(
                    f'Input "{INPUT_NAME}" element {i} must be a base64 string in JSON '
                    "(send raw bytes with the binary tensor data extension)."
                )
        return [_decode_base64(item, i) for i, item in enumerate(data)]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput("binary_data_size must be a non-negative integer.")
    if "data" in spec:
        raise InvalidInput(f'Input "{INPUT_NAME}" has both "data" and binary_data_size.')
    if size != len(binary):
        raise InvalidInput(
            f"binary_data_size is {size} bytes but {len(binary)} follow the JSON header "
            "(Inference-Header-Content-Length)."
        )
    return deserialize_bytes(binary, count)


def _parse_outputs(value: Any) -> dict[str, bool] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidInput('"outputs" must be a list of {"name": ...} objects.')
    wanted: dict[str, bool] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput('Each of "outputs" must be an object with a "name".')
        params = _object(item.get("parameters"), f'Output "{item["name"]}" "parameters"')
        wanted[item["name"]] = _flag(params, "binary_data", f'Output "{item["name"]}"')
    return wanted


# -- results ----------------------------------------------------------------------------------


def _polygons(items: list[tuple[int, list[float], float]]) -> list[Tensor]:
    """``boxes`` ``[N, K, 2]`` (K: the most vertices; shorter polygons repeat their last
    vertex), ``box_scores`` ``[N]`` and ``batch_index`` ``[N]``."""
    k = max((len(points) // 2 for _, points, _ in items), default=4)
    flat: list[float] = []
    for _, points, _ in items:
        pad = points[-2:] * (k - len(points) // 2)
        flat.extend(float(v) for v in [*points, *pad])
    n = len(items)
    return [
        Tensor("boxes", "FP32", (n, k, 2), flat),
        Tensor("box_scores", "FP32", (n,), [float(s) for _, _, s in items]),
        Tensor("batch_index", "INT32", (n,), [i for i, _, _ in items]),
    ]


def check_outputs(request: InferRequest, task: str) -> None:
    """400 for requested outputs the task does not produce (before any work is queued)."""
    names = [t.name for t in task_outputs(task)]
    unknown = [n for n in request.outputs or () if n not in names]
    if unknown:
        raise InvalidInput(
            f"Unknown output(s) {', '.join(map(repr, unknown))}: this model's outputs are "
            f"{', '.join(names)}."
        )


def results_to_tensors(task: str, results: Sequence[dict[str, Any]]) -> list[Tensor]:
    """The output tensors of one result dict per image (the TorchServe answers), in
    `task_outputs` order. A document's pages (a multi-page TIFF) have no tensor form: 400."""
    if any("pages" in r for r in results):
        raise InvalidInput(DOCUMENTS_UNSUPPORTED)
    if task == "textrecog":
        return [
            Tensor("text", "BYTES", (len(results),), [r["text"] for r in results]),
            Tensor("score", "FP32", (len(results),), [float(r["score"]) for r in results]),
        ]
    if task == "textdet":
        return _polygons(
            [(i, b[:-1], b[-1]) for i, r in enumerate(results) for b in r["boundary_result"]]
        )
    if task == "e2e":
        lines = [(i, line) for i, r in enumerate(results) for line in r["result"]]
        boxes, scores, index = _polygons([(i, ln["box"], ln["box_score"]) for i, ln in lines])
        n = len(lines)
        return [
            boxes,
            scores,
            Tensor("text", "BYTES", (n,), [ln["text"] for _, ln in lines]),
            Tensor("score", "FP32", (n,), [float(ln["text_score"]) for _, ln in lines]),
            index,
        ]
    raise ValueError(f"unknown task {task!r}: one of {', '.join(_OUTPUTS)}")


def serialize(tensor: Tensor) -> bytes:
    """A tensor's binary form: little-endian numbers, or length-prefixed BYTES elements."""
    if tensor.datatype == "BYTES":
        parts = []
        for item in tensor.data:
            raw = item.encode() if isinstance(item, str) else bytes(item)
            parts += [struct.pack("<I", len(raw)), raw]
        return b"".join(parts)
    return struct.pack(f"<{len(tensor.data)}{_FORMATS[tensor.datatype]}", *tensor.data)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; never expected from a model, but never invalid JSON
    return value


def encode_response(
    model_name: str,
    model_version: str,
    request: InferRequest,
    tensors: Sequence[Tensor],
) -> tuple[bytes, int | None]:
    """The response body and, when any output is binary, its JSON header's length (the
    ``Inference-Header-Content-Length``). Only the requested outputs (`check_outputs` has
    checked their names), in the request's order."""
    by_name = {t.name: t for t in tensors}
    if request.outputs is None:
        chosen = [(t, request.binary_output) for t in tensors]
    else:
        chosen = [(by_name[n], b or request.binary_output) for n, b in request.outputs.items()]
    outputs, blobs = [], []
    for tensor, binary in chosen:
        out: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
        }
        if binary:
            blob = serialize(tensor)
            out["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            out["data"] = [_json_value(v) for v in tensor.data]
        outputs.append(out)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = outputs
    header = json.dumps(doc, ensure_ascii=False).encode()
    if not blobs:
        return header, None
    return header + b"".join(blobs), len(header)
