"""Tiny ONNX networks with PaddleOCR's input/output contract, written with onnx's helper API.

- detector ``x: N x 3 x H x W -> N x 1 x H x W``: a 1 x 1 convolution and a sigmoid that light
  up dark pixels (after ImageNet normalisation), so it really "detects" dark text on a light page;
- recognizer ``x: N x 3 x 48 x W -> N x W/8 x C``: one 48 x 8 convolution per step, softmax
  over C classes (seeded weights), the dictionary in the ``character`` metadata or not;
- angle classifier ``x: N x 3 x 48 x 192 -> N x 2``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the tiny PaddleOCR networks are written with onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

__all__ = [
    "tiny_cls",
    "tiny_det",
    "tiny_det_deep",
    "tiny_det_gelu",
    "tiny_rec",
    "tiny_rec_near_tie",
]

OPSET = 17


def _save(graph: onnx.GraphProto, path: Path, metadata: dict[str, str] | None = None) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tiny_det(path: Path, channels: int = 3, out_channels: int = 1) -> Path:
    """A DB-like detector: probability of "dark" per pixel, at input size."""
    weight = np.full((out_channels, channels, 1, 1), -2.0, np.float32)
    bias = np.zeros(out_channels, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w", "b"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["prob"]),
        ],
        "tiny_det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", channels, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", out_channels, "h", "w"])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )
    return _save(graph, path)


def tiny_rec(
    path: Path, classes: int, dictionary: list[str] | None = None, height: int | str = 48
) -> Path:
    """A CTC recognizer with ``classes`` outputs per step (one step per 8 columns)."""
    rng = np.random.default_rng(0)
    kernel_h = height if isinstance(height, int) else 48
    weight = rng.normal(0, 0.2, (classes, 3, kernel_h, 8)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], strides=[kernel_h, 8]),
            helper.make_node("Squeeze", ["c", "axes"], ["s"]),
            helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Softmax", ["t"], ["probs"], axis=2),
        ],
        "tiny_rec",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, height, "w"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", "t", classes])],
        [
            numpy_helper.from_array(weight, "w"),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
        ],
    )
    meta = {"character": "\n".join(dictionary)} if dictionary is not None else None
    return _save(graph, path, meta)


def tiny_cls(path: Path) -> Path:
    """An angle classifier: mean colour -> two scores that sum to 1 ("0" wins on light crops)."""
    weight = np.array([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]], np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["x"], ["g"]),
            helper.make_node("Flatten", ["g"], ["f"]),
            helper.make_node("Gemm", ["f", "w"], ["z"], transB=1),
            helper.make_node("Softmax", ["z"], ["probs"], axis=1),
        ],
        "tiny_cls",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, 192])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", 2])],
        [numpy_helper.from_array(weight, "w")],
    )
    return _save(graph, path)


def tiny_det_deep(path: Path) -> Path:
    """`tiny_det` as two convolutions (3 -> 4 -> 1 channels, the same function): the first is
    what int8 quantizes, the second the head it keeps in FP32."""
    first = np.full((4, 3, 1, 1), -1.0, np.float32)
    second = np.full((1, 4, 1, 1), 0.5, np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["h"]),
            helper.make_node("Conv", ["h", "w2"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["prob"]),
        ],
        "tiny_det_deep",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [numpy_helper.from_array(first, "w1"), numpy_helper.from_array(second, "w2")],
    )
    return _save(graph, path)


def tiny_det_gelu(path: Path) -> Path:
    """Three convolutions (3 -> 4 -> 4 -> 1 channels, seeded weights) with, between the first
    two, a GELU written as PaddleOCR's exports write it (``x * 0.5 * (1 + erf(x / sqrt 2))``,
    five nodes) and, between the last two, a Relu (which ONNX Runtime could fuse into the
    convolution before it)."""
    rng = np.random.default_rng(2)
    weights = {
        "w1": rng.normal(0, 1, (4, 3, 1, 1)).astype(np.float32),
        "w2": rng.normal(0, 1, (4, 4, 3, 3)).astype(np.float32),
        "w3": rng.normal(0, 1, (1, 4, 1, 1)).astype(np.float32),
        "sqrt2": np.array(np.sqrt(2.0), np.float32),
        "one": np.array(1.0, np.float32),
        "half": np.array(0.5, np.float32),
    }
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["a"]),
            helper.make_node("Div", ["a", "sqrt2"], ["a_scaled"]),
            helper.make_node("Erf", ["a_scaled"], ["a_erf"]),
            helper.make_node("Add", ["a_erf", "one"], ["a_plus"]),
            helper.make_node("Mul", ["a", "a_plus"], ["a_times"]),
            helper.make_node("Mul", ["a_times", "half"], ["g"]),
            helper.make_node("Conv", ["g", "w2"], ["b"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["b"], ["r"]),
            helper.make_node("Conv", ["r", "w3"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["prob"]),
        ],
        "tiny_det_gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    return _save(graph, path)


def tiny_rec_near_tie(path: Path, dictionary: list[str]) -> Path:
    """A CTC recognizer whose classes nearly tie: every class's filter is one shared filter plus
    noise 1e-4 its size, so FP32 picks a class by that noise and int8's rounding of the weights
    (about 1/254 of the largest) picks others: a recognizer int8 cannot keep in agreement."""
    rng = np.random.default_rng(1)
    classes = len(dictionary) + 2
    shared = rng.normal(0, 0.2, (1, 3, 48, 8)).astype(np.float32)
    first = shared + rng.normal(0, 2e-5, (classes, 3, 48, 8)).astype(np.float32)
    head = np.eye(classes, dtype=np.float32).reshape(classes, classes, 1, 1)
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w1"], ["c1"], strides=[48, 8]),
            helper.make_node("Conv", ["c1", "w2"], ["c"]),
            helper.make_node("Squeeze", ["c", "axes"], ["s"]),
            helper.make_node("Transpose", ["s"], ["t"], perm=[0, 2, 1]),
            helper.make_node("Softmax", ["t"], ["probs"], axis=2),
        ],
        "tiny_rec_near_tie",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 48, "w"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["n", "t", classes])],
        [
            numpy_helper.from_array(first, "w1"),
            numpy_helper.from_array(head, "w2"),
            numpy_helper.from_array(np.array([2], np.int64), "axes"),
        ],
    )
    return _save(graph, path, {"character": "\n".join(dictionary)})
