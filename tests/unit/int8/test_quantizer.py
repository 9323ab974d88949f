from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ocrserve.errors import ArchiveError
from ocrserve.int8.quantizer import Int8Settings, nodes_near_outputs, quantize_onnx
from tests.tiny_ppocr import tiny_det_deep, tiny_det_gelu

onnx = pytest.importorskip("onnx")


def test_settings_are_checked() -> None:
    with pytest.raises(ArchiveError, match="calibration method 'mean'"):
        Int8Settings(method="mean")
    with pytest.raises(ArchiveError, match="qdq or qoperator"):
        Int8Settings(quant_format="qint")
    with pytest.raises(ArchiveError, match="fused or basic"):
        Int8Settings(prepare="full")
    assert Int8Settings().to_json()["keep_fp32_ops"] == []


def test_the_head_is_the_convolution_nearest_the_output(tmp_path: Path) -> None:
    model = onnx.load(str(tiny_det_deep(tmp_path / "det.onnx")))
    for n, node in enumerate(model.graph.node):
        node.name = f"n{n}"
    assert nodes_near_outputs(model, 1) == ["n1"]
    assert nodes_near_outputs(model, 2) == ["n1", "n0"]
    assert nodes_near_outputs(model, 0) == []


def test_quantized_model_keeps_its_answers_and_its_head(tmp_path: Path) -> None:
    import onnxruntime as ort

    path = tiny_det_deep(tmp_path / "det.onnx")
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(0, 1, (1, 3, 32, 64)).astype(np.float32)} for _ in range(4)]
    data, kept, applied = quantize_onnx(path, feeds, Int8Settings())
    model = onnx.load_from_string(data)
    assert kept == ["Conv_1"] and applied == "fused"
    assert {n.op_type for n in model.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    # the kept head reads a dequantized tensor, and is not fed int8 weights
    head = next(n for n in model.graph.node if n.name == "Conv_1")
    assert not head.input[1].endswith("_DequantizeLinear_Output")
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = feeds[0]
    np.testing.assert_allclose(int8.run(None, x)[0], fp32.run(None, x)[0], atol=0.05)
    with pytest.raises(ArchiveError, match="no input"):
        quantize_onnx(path, [], Int8Settings())


@pytest.mark.parametrize("prepare", ["fused", "basic"])
def test_gelu_is_fused_into_one_fp32_kernel_and_every_convolution_stays_quantized(
    tmp_path: Path, prepare: str
) -> None:
    """``prepare="fused"``: GELU's five nodes become one ``Gelu`` left in FP32 (the quantizer
    has no int8 GELU: it would quantize the Div and the Muls one by one), while the two
    convolutions before the head stay plain ``Conv`` nodes fed int8 weights (the Relu is not
    fused into its convolution, which would hide that convolution from the quantizer)."""
    import onnxruntime as ort

    path = tiny_det_gelu(tmp_path / "det.onnx")
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(0, 1, (1, 3, 16, 24)).astype(np.float32)} for _ in range(4)]
    data, kept, applied = quantize_onnx(path, feeds, Int8Settings(prepare=prepare))
    assert applied == prepare
    model = onnx.load_from_string(data)
    ops = [n.op_type for n in model.graph.node]
    if prepare == "fused":
        assert ops.count("Gelu") == 1 and "Erf" not in ops and "Div" not in ops
    else:
        assert "Gelu" not in ops and ops.count("Erf") == 1
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == 3 and "FusedConv" not in ops
    int8_weights = [c.name for c in convs if c.input[1].endswith("_DequantizeLinear_Output")]
    assert len(int8_weights) == 2 and len(kept) == 1 and kept[0] not in int8_weights
    fp32 = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    int8 = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    x = feeds[0]
    # a sigmoid's output: int8 rounding of random weights moves it by a few hundredths
    np.testing.assert_allclose(int8.run(None, x)[0], fp32.run(None, x)[0], atol=0.1)


def test_a_failed_fused_preparation_quantizes_the_plain_graph_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    real = ort.InferenceSession

    def broken(*args: object, **kwargs: object) -> object:  # the optimizer's session only
        if "disabled_optimizers" in kwargs:
            raise RuntimeError("optimizer crashed")
        return real(*args, **kwargs)  # calibration's sessions

    path = tiny_det_gelu(tmp_path / "det.onnx")
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.normal(0, 1, (1, 3, 16, 24)).astype(np.float32)} for _ in range(2)]
    monkeypatch.setattr(ort, "InferenceSession", broken)
    data, _, applied = quantize_onnx(path, feeds, Int8Settings(prepare="fused"))
    assert applied == "basic (the fused preparation failed: RuntimeError)"
    ops = [n.op_type for n in onnx.load_from_string(data).graph.node]
    assert "Gelu" not in ops and ops.count("Erf") == 1
