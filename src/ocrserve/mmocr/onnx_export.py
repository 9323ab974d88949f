"""ONNX for MMOCR models: export the network, check ONNX Runtime against PyTorch, run it.

Only the network moves to ONNX Runtime; the MMOCR pre- and post-processing stay ocrserve's
(`MMOCRPredictor`), so an ONNX archive gives the PyTorch archive's answers up to the float
differences the export check reports.

The graph's inputs are ``img`` (``N x 3 x H x W``, every dimension dynamic) and, for recognizers,
``valid_ratio`` (``N``, float64: the masks of SAR, NRTR, RobustScanner and SATRN are computed in
the graph from it, see `ocrserve.mmocr.models.valid_ratio`). A network returning one tensor has the
output ``out``; nested outputs (FCENet's ``(cls, reg)`` pair per level, should FCENet leave
`REFUSED`) are flattened into ``out.0.0``, ``out.0.1``, ``out.1.0``, ... and nested again after
ONNX Runtime. The greedy decoding loops of the attention recognizers run ``max_seq_len`` steps
with no early exit (as in MMOCR 0.6.3), so tracing unrolls them into the same computation.
ABINet's language model reads its input lengths from the previous logits (the first end token);
they are computed with fixed-shape operations (arg-max, cumulative sum, additive masks over all
``max_seq_len`` keys), so the graph recomputes them for every input rather than freezing the
sample's, and its ``iter_size`` iterations unroll like the decoding loops.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrserve.errors import ArchiveError

if TYPE_CHECKING:
    from torch import Tensor

    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

__all__ = [
    "EXPORTABLE",
    "ONNX_TOLERANCE",
    "REFUSED",
    "OnnxNetwork",
    "check_exportable",
    "export_onnx",
    "load_onnx_network",
    "model_type",
    "onnx_tolerance",
]

#: Largest raw-output difference between ONNX Runtime and PyTorch accepted at archive time,
#: relative to the output's largest magnitude where that exceeds 1 (`onnx_tolerance`).
ONNX_TOLERANCE = 1e-3
#: MMOCR model types whose network exports faithfully (each checked on the parity fixtures:
#: tests/parity/test_mmocr_parity_onnx.py). DBNet++ is ``DBNet`` with DCNv2 in the backbone;
#: ``CRNNNet`` includes CRNN with TPS rectification (``GridSample``, opset 16+); SegOCR's graph ends
#: at the head's class map (``SegConvertor`` reads it outside the graph).
EXPORTABLE = frozenset(
    {
        "DBNet", "PANet", "PSENet", "TextSnake",
        "CRNNNet", "SARNet", "NRTR", "RobustScanner", "SATRN", "MASTER", "ABINet",
        "SegRecognizer",
    }
)  # fmt: skip
#: Why the architectures known not to export faithfully are refused.
REFUSED: Mapping[str, str] = {
    "FCENet": (
        "its raw maps export within 6e-5, but its polygon NMS keeps the first of equal-score "
        "candidates and ONNX Runtime's float rounding reorders them: on the MMOCR parity "
        "fixtures, polygons moved by up to 510 px and one image gained a polygon"
    ),
    "OCRMaskRCNN": (
        "Mask R-CNN is two networks joined by data-dependent steps (per-level top-k, greedy NMS "
        "over the proposals and again over the detections, RoIAlign on boxes chosen at run "
        "time, and a meta-dependent rescale); a traced graph freezes the sample's boxes and "
        "counts, and ONNX's NonMaxSuppression differs from mmcv's on ties and at the IoU "
        "threshold, which the parity fixtures are full of"
    ),
    "DRRG": (
        "its network is data-dependent past the maps: the text components (contours, "
        "locality-aware NMS), the local graphs built from them and the rotated RoI-Align "
        "between the maps and the GCN change in number and shape with every image, so a "
        "traced graph would freeze one image's components"
    ),
}
IMG, VALID_RATIO, OUT = "img", "valid_ratio", "out"


def model_type(predictor: MMOCRPredictor) -> str:
    """The MMOCR type of the predictor's model (``DBNet``, ``SARNet``, ...)."""
    return str(predictor.config["model"].get("type"))


def check_exportable(kind: str) -> None:
    """Raise `ArchiveError` naming the reason when networks of MMOCR type ``kind`` cannot go to
    ONNX."""
    if kind in EXPORTABLE:
        return
    reason = REFUSED.get(kind, "its ONNX export has not been checked against PyTorch")
    raise ArchiveError(
        f"--runtime onnx: {kind} is not exported: {reason} (exported: "
        f"{', '.join(sorted(EXPORTABLE))}); archive it with --runtime torch"
    )


def onnx_tolerance(expected: Tensor) -> float:
    """The largest ORT-vs-PyTorch difference accepted for one output: `ONNX_TOLERANCE`, scaled
    by the output's largest magnitude above 1 (PSENet's logits reach ~360, where float32 steps
    are already 3e-5 apart)."""
    return ONNX_TOLERANCE * max(1.0, float(expected.abs().max()))


def _sample_inputs(predictor: MMOCRPredictor) -> dict[str, Tensor]:
    """A preprocessed input of the model's test resolution, from a synthetic image.

    Recognizers get a batch of two copies with different ``valid_ratio``, so that the export
    traces (and the check exercises) a batch whose images are masked differently.
    """
    import torch

    from ocrserve.mmocr.models.valid_ratio import valid_ratio_of

    rng = np.random.default_rng(0)
    shape = (640, 640, 3) if predictor.task == "textdet" else (32, 100, 3)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    sample = predictor.preprocess(image)[0]
    img = torch.from_numpy(np.ascontiguousarray(sample.img[None]))
    if predictor.task == "textdet":
        return {IMG: img}
    ratio = valid_ratio_of(sample.meta, sample.img.shape[-1])
    ratios = torch.tensor([ratio, ratio / 2], dtype=torch.float64)
    return {IMG: img.repeat(2, 1, 1, 1), VALID_RATIO: ratios}


def export_onnx(predictor: MMOCRPredictor, path: Path) -> float:
    """Write the network as ONNX and return the max abs difference ORT vs PyTorch."""
    import torch

    check_exportable(model_type(predictor))
    inputs = _sample_inputs(predictor)
    module = _network_module(predictor)
    # A recognizer's unrolled decoding is thousands of tiny ops: more threads do not make them
    # faster, and make them much slower (10x seen) when other processes keep the cores busy.
    threads = 1 if predictor.task == "textrecog" else torch.get_num_threads()
    with _torch_threads(threads):
        with torch.inference_mode():
            expected = _flatten(module(*inputs.values()))
        _export(module, inputs, [name for name, _ in expected], path)
    got = dict(_flatten(OnnxNetwork(path, threads)(*inputs.values())))
    worst = 0.0
    for name, want in expected:
        if name not in got or got[name].shape != want.shape:
            shape = tuple(got[name].shape) if name in got else None
            raise ArchiveError(f"--runtime onnx: output {name} {shape} != {tuple(want.shape)}")
        diff = float((got[name] - want).abs().max())
        if diff > onnx_tolerance(want):
            raise ArchiveError(
                f"--runtime onnx: ONNX Runtime differs from PyTorch by {diff:.3g} on {name} "
                f"(> {onnx_tolerance(want):.3g}); archive it with --runtime torch"
            )
        worst = max(worst, diff)
    return worst


def _export(module: Any, inputs: Mapping[str, Tensor], outputs: list[str], path: Path) -> None:
    import torch

    dims = {IMG: {0: "batch", 2: "height", 3: "width"}, VALID_RATIO: {0: "batch"}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, tuple(inputs.values()), str(path), input_names=list(inputs),
                output_names=outputs, dynamic_axes={name: dims[name] for name in inputs},
                opset_version=17, dynamo=False,
            )  # fmt: skip
    except Exception as exc:  # the exporter raises many kinds for unsupported ops
        raise ArchiveError(f"--runtime onnx: the network cannot be exported: {exc}") from exc


@contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _network_module(predictor: MMOCRPredictor) -> Any:
    """The network as a module of ``(img)`` (detectors) or ``(img, valid_ratio)``."""
    import torch

    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = predictor.model

        def forward(self, img: Tensor, valid_ratio: Tensor | None = None) -> Any:
            if predictor.task == "textdet":
                return self.model(img)
            # One meta holding the batch's ratios keeps the batch size dynamic in the graph.
            return self.model(img, [{VALID_RATIO: valid_ratio}])

    return Network().eval()


def _flatten(out: Any, name: str = OUT) -> list[tuple[str, Tensor]]:
    """``(name, tensor)`` for every tensor in nested tuples: ``out``, or ``out.i.j...``."""
    if isinstance(out, (tuple, list)):
        return [item for i, o in enumerate(out) for item in _flatten(o, f"{name}.{i}")]
    return [(name, out)]


def _nest(named: Sequence[tuple[str, Any]]) -> Any:
    """The inverse of `_flatten`: tuples nested as the ``.i.j`` suffixes of the names say."""
    paths = [(tuple(int(p) for p in name.split(".")[1:]), value) for name, value in named]
    return _nest_paths(paths)


def _nest_paths(paths: list[tuple[tuple[int, ...], Any]]) -> Any:
    if len(paths) == 1 and not paths[0][0]:
        return paths[0][1]
    groups: dict[int, list[tuple[tuple[int, ...], Any]]] = {}
    for path, value in paths:
        if not path:
            raise ValueError("ONNX outputs mix a tensor and nested tensors at one level")
        groups.setdefault(path[0], []).append((path[1:], value))
    if sorted(groups) != list(range(len(groups))):
        raise ValueError(f"ONNX outputs are missing an index: {sorted(groups)}")
    return tuple(_nest_paths(groups[i]) for i in range(len(groups)))


def load_onnx_network(kind: str, path: Path, threads: int) -> OnnxNetwork:
    """The ONNX network of an archive whose model is of MMOCR type ``kind``, to hand to
    `MMOCRPredictor` as its ``network`` (`ArchiveError` for a type that does not export)."""
    check_exportable(kind)
    return OnnxNetwork(path, threads)


class OnnxNetwork:
    """An ONNX Runtime session: `run` takes and gives numpy arrays (what torch-free serving
    calls, `ocrserve.mmocr.onnx_predictor`); calling it takes and gives tensors, like the PyTorch
    network."""

    def __init__(self, path: Path, threads: int) -> None:
        from ocrserve.onnx_session import create_session

        self.session = create_session(path, threads)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: np.ndarray, valid_ratio: np.ndarray | None = None) -> Any:
        """``N x 3 x H x W`` float32 (and ``N`` valid ratios) -> an array, or the network's
        nested tuples of them."""
        feed = {IMG: batch}
        if VALID_RATIO in self.input_names:
            ratios = np.ones(batch.shape[0]) if valid_ratio is None else valid_ratio
            feed[VALID_RATIO] = np.ascontiguousarray(ratios, dtype=np.float64)
        outs = self.session.run(self.output_names, feed)
        return _nest(list(zip(self.output_names, outs)))

    def __call__(self, batch: Tensor, valid_ratio: Tensor | None = None) -> Any:
        import torch

        ratios = None if valid_ratio is None else valid_ratio.cpu().numpy()
        out = self.run(batch.cpu().numpy(), ratios)
        return _map_nested(torch.from_numpy, out)


def _map_nested(fn: Any, out: Any) -> Any:
    if isinstance(out, tuple):
        return tuple(_map_nested(fn, o) for o in out)
    return fn(out)
