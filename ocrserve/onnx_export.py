"""ONNX for MMOCR models: export the network, check ONNX Runtime against PyTorch, run it.

Only the network moves to ONNX Runtime; the MMOCR pre- and post-processing stay ocrserve's
(`MMOCRPredictor`), so an ONNX archive gives the PyTorch archive's answers up to the float
differences the export check reports.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ocrserve.archive import ArchiveError

if TYPE_CHECKING:
    from torch import Tensor

    from ocrserve.mmocr_predictor import MMOCRPredictor

__all__ = ["ONNX_TOLERANCE", "OnnxNetwork", "check_exportable", "export_onnx"]

#: Largest raw-output difference between ONNX Runtime and PyTorch accepted at archive time.
ONNX_TOLERANCE = 1e-3
#: Architectures whose forward pass exports faithfully (recognizers whose decoder ignores
#: per-image metas; attention decoders need valid_ratio masks and greedy loops).
EXPORTABLE = {"DBNet", "CRNNNet"}


def check_exportable(predictor: MMOCRPredictor) -> None:
    kind = str(predictor.config["model"].get("type"))
    if kind not in EXPORTABLE:
        raise ArchiveError(
            f"--runtime onnx: {kind} cannot be exported faithfully yet (supported: "
            f"{', '.join(sorted(EXPORTABLE))}); archive it with --runtime torch"
        )


def _sample(predictor: MMOCRPredictor) -> Any:
    """A preprocessed input of the model's test resolution, from a synthetic image."""
    rng = np.random.default_rng(0)
    shape = (640, 640, 3) if predictor.task == "textdet" else (32, 100, 3)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return predictor.preprocess(image)[0]


def export_onnx(predictor: MMOCRPredictor, path: Path) -> float:
    """Write the network as ONNX and return the max abs difference ORT vs PyTorch."""
    import torch

    check_exportable(predictor)
    sample = _sample(predictor)
    x = torch.from_numpy(np.ascontiguousarray(sample.img[None]))
    module = _network_module(predictor)
    with torch.inference_mode():
        expected = module(x).numpy()
    dims = {0: "batch", 2: "height", 3: "width"}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, (x,), str(path), input_names=["img"], output_names=["out"],
                dynamic_axes={"img": dims}, opset_version=17, dynamo=False,
            )  # fmt: skip
    except Exception as exc:  # the exporter raises many kinds for unsupported ops
        raise ArchiveError(f"--runtime onnx: the network cannot be exported: {exc}") from exc
    got = OnnxNetwork(path, threads=1)(x).numpy()
    if got.shape != expected.shape:
        raise ArchiveError(f"--runtime onnx: output shape {got.shape} != {expected.shape}")
    diff = float(np.abs(got - expected).max())
    if diff > ONNX_TOLERANCE:
        raise ArchiveError(
            f"--runtime onnx: ONNX Runtime differs from PyTorch by {diff:.3g} "
            f"(> {ONNX_TOLERANCE}); archive it with --runtime torch"
        )
    return diff


def _network_module(predictor: MMOCRPredictor) -> Any:
    """The network as a one-input module (recognizers get empty metas: CRNN ignores them)."""
    import torch

    class Network(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = predictor.model

        def forward(self, img: Tensor) -> Tensor:
            if predictor.task == "textdet":
                return self.model(img)
            return self.model(img, [{}])

    return Network().eval()


class OnnxNetwork:
    """An ONNX Runtime session callable like the PyTorch network (tensor in, tensor out)."""

    def __init__(self, path: Path, threads: int) -> None:
        from ocrserve.builtin.onnx import create_session

        self.session = create_session(path, threads)

    def __call__(self, batch: Tensor) -> Tensor:
        import torch

        out = self.session.run(None, {"img": batch.cpu().numpy()})[0]
        return torch.from_numpy(out)
