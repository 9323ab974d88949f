"""ONNX Runtime static quantization of one network: FP32 ONNX bytes + recorded feeds -> int8.

QDQ format, int8 per-channel weights and uint8 activations by default (the VNNI ``u8s8`` path of
ONNX Runtime's x86 kernels); the layers nearest the outputs (the detector's probability head,
the recognizer's classifier) can be kept in FP32, where rounding costs the most accuracy for the
least time. The settings are one frozen object (`Int8Settings`), recorded in the manifest.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ocrserve.errors import ArchiveError

__all__ = ["COMPUTE_OPS", "Int8Settings", "nodes_near_outputs", "quantize_onnx"]

#: The operators that carry the arithmetic (and that int8 speeds up).
COMPUTE_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class Int8Settings:
    """How a network is quantized (chosen on textset-public: docs/benchmarks.md#int8)."""

    #: Calibration: ``minmax``, ``entropy`` or ``percentile`` (ONNX Runtime's calibrators).
    method: str = "minmax"
    #: ``qdq`` (QuantizeLinear/DequantizeLinear pairs, fused by ONNX Runtime) or ``qoperator``.
    quant_format: str = "qdq"
    per_channel: bool = True
    reduce_range: bool = False
    #: uint8 activations (``u8s8``) or int8 (``s8s8``).
    activations: str = "uint8"
    #: Compute nodes nearest each graph output kept in FP32 (see `nodes_near_outputs`).
    keep_fp32_head: int = 1
    #: Operator types kept in FP32 wherever they are.
    keep_fp32_ops: tuple[str, ...] = ()
    #: ``fused``: before quantizing, ONNX Runtime's extended graph optimizations fuse chains of
    #: element-wise nodes into one FP32 kernel (GELU's five nodes into ``Gelu``), which then stays
    #: FP32 between the int8 convolutions instead of becoming five quantized nodes; fusions that
    #: would hide a Conv, MatMul or Gemm from the quantizer are left out (`HIDING_FUSIONS`).
    #: ``basic``: the graph as ONNX Runtime's basic optimizations leave it.
    prepare: str = "fused"
    #: Feeds used to calibrate at most (evenly spread over the recorded ones).
    max_feeds: int = 64
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ArchiveError(f"int8 calibration method {self.method!r}: one of {METHODS}")
        if self.quant_format not in ("qdq", "qoperator"):
            raise ArchiveError(f"int8 format {self.quant_format!r}: qdq or qoperator")
        if self.prepare not in ("fused", "basic"):
            raise ArchiveError(f"int8 preparation {self.prepare!r}: fused or basic")
        if self.activations not in ("uint8", "int8"):
            raise ArchiveError(f"int8 activations {self.activations!r}: uint8 or int8")

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["keep_fp32_ops"] = list(self.keep_fp32_ops)
        return out


def nodes_near_outputs(model: Any, count: int) -> list[str]:
    """The names of the ``count`` compute nodes (`COMPUTE_OPS`) closest to each graph output,
    walking the graph backwards: the layers whose rounding reaches the answer undiluted."""
    if count <= 0:
        return []
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    for output in model.graph.output:
        seen: set[str] = set()
        frontier = [output.name]
        taken = 0
        while frontier and taken < count:
            nxt: list[str] = []
            for tensor in frontier:
                node = producer.get(tensor)
                if node is None or node.name in seen:
                    continue
                seen.add(node.name)
                if node.op_type in COMPUTE_OPS and taken < count:
                    found.append(node.name)
                    taken += 1
                nxt.extend(node.input)
            frontier = nxt
    return list(dict.fromkeys(found))


#: ONNX Runtime fusions that turn a Conv, MatMul or Gemm into an operator the quantizer leaves
#: in FP32 (``FusedConv``, ``FusedGemm``, ``FusedMatMul``, ``Attention``).
HIDING_FUSIONS = (
    "ConvActivationFusion",
    "GemmActivationFusion",
    "MatMulScaleFusion",
    "MatMulTransposeFusion",
    "AttentionFusion",
)


def _compute_ops(model: Any) -> int:
    return sum(node.op_type in COMPUTE_OPS for node in model.graph.node)


def _fused(model: Any, folder: Path) -> tuple[Any, str]:
    """``model`` after ONNX Runtime's extended graph optimizations, less `HIDING_FUSIONS`;
    ``model`` itself where they fail or change how many compute nodes there are. With the
    preparation applied: ``fused``, or ``basic`` and why."""
    import onnx
    import onnxruntime as ort

    source, target = folder / "to_fuse.onnx", folder / "fused.onnx"
    onnx.save(model, str(source))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3
    try:
        ort.InferenceSession(
            str(source), options, ["CPUExecutionProvider"], disabled_optimizers=list(HIDING_FUSIONS)
        )
        fused = onnx.load(str(target))
    except Exception as exc:  # an optimization, not a requirement: quantize the graph as it is
        return model, f"basic (the fused preparation failed: {type(exc).__name__})"
    before, after = _compute_ops(model), _compute_ops(fused)
    if before != after:
        return model, f"basic (the fused graph had {after} compute nodes, not {before})"
    return fused, "fused"


#: The opset per-channel QDQ needs; older graphs (PaddleOCR exports are opset 11) are converted.
MIN_OPSET = 13


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _upgrade(model: Any, name: str) -> Any:
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as exc:  # onnx raises several types; name the network
        why = f"cannot convert opset {_opset(model)} to {MIN_OPSET} ({exc})"
        raise ArchiveError(f"{name}: {why}") from exc


class _Feeds:
    """ONNX Runtime's ``CalibrationDataReader`` over recorded feeds."""

    def __init__(self, feeds: Sequence[dict[str, np.ndarray]], names: set[str]) -> None:
        self._items: Iterator[dict[str, np.ndarray]] = iter(
            [{k: v for k, v in feed.items() if k in names} for feed in feeds]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)

    def rewind(self) -> None:  # pragma: no cover - not called by quantize_static
        raise NotImplementedError


def _spread(feeds: Sequence[dict[str, np.ndarray]], most: int) -> list[dict[str, np.ndarray]]:
    if len(feeds) <= most:
        return list(feeds)
    picks = np.linspace(0, len(feeds) - 1, most).round().astype(int)
    return [feeds[i] for i in dict.fromkeys(picks.tolist())]


def quantize_onnx(
    fp32: Path, feeds: Sequence[dict[str, np.ndarray]], settings: Int8Settings
) -> tuple[bytes, list[str], str]:
    """The int8 model's bytes, the compute nodes kept in FP32 and the preparation applied
    (``fused``, or ``basic`` with the reason when ``fused`` was asked for and fell back)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not feeds:
        raise ArchiveError(
            f"{fp32.name}: the calibration images gave the network no input (no text found?)"
        )
    with tempfile.TemporaryDirectory(prefix="ocrserve-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:
            quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        except Exception:  # the pre-processing is an optimization; quantize the file as it is
            prepared = fp32
        model = onnx.load(str(prepared))
        if _opset(model) < MIN_OPSET:  # per-channel QDQ (an ``axis`` on DequantizeLinear)
            model = _upgrade(model, fp32.name)
        applied = "basic"
        if settings.prepare == "fused":
            model, applied = _fused(model, Path(tmp))
        for n, node in enumerate(model.graph.node):  # nodes are kept in FP32 by name
            node.name = node.name or f"{node.op_type}_{n}"
        prepared = Path(tmp) / "named.onnx"
        onnx.save(model, str(prepared))
        keep = nodes_near_outputs(model, settings.keep_fp32_head)
        keep += [n.name for n in model.graph.node if n.op_type in settings.keep_fp32_ops]
        keep = list(dict.fromkeys(keep))
        names = {i.name for i in model.graph.input}
        reader = _Feeds(_spread(feeds, settings.max_feeds), names)
        method = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[settings.method]
        act = QuantType.QUInt8 if settings.activations == "uint8" else QuantType.QInt8
        out = Path(tmp) / "int8.onnx"
        extra = dict(settings.extra)
        try:
            quantize_static(
                str(prepared),
                str(out),
                reader,  # duck-typed CalibrationDataReader
                quant_format=QuantFormat.QDQ
                if settings.quant_format == "qdq"
                else QuantFormat.QOperator,
                per_channel=settings.per_channel,
                reduce_range=settings.reduce_range,
                activation_type=act,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=keep,
                calibrate_method=method,
                extra_options=extra,
            )
        except Exception as exc:  # ONNX Runtime's own errors: name the network
            raise ArchiveError(f"{fp32.name}: int8 quantization failed ({exc})") from exc
        return out.read_bytes(), keep, applied
