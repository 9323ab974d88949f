"""ONNX export of MMOCR networks on small random models: valid_ratio as a graph input, dynamic
batch and width, nested outputs, refusals that name the reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from ocrserve.errors import ArchiveError
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.onnx_export import (
    EXPORTABLE,
    REFUSED,
    OnnxNetwork,
    _flatten,
    _nest,
    check_exportable,
    export_onnx,
    load_onnx_network,
    onnx_tolerance,
)
from tests.unit.mmocr.models.test_nrtr import nrtr_config
from tests.unit.mmocr.models.test_sar import sar_config

#: SAR's test pipeline without the rotations: height 48, padded to 160 (valid_ratio < 1).
PIPELINE: list[dict[str, Any]] = [
    {"type": "LoadImageFromFile"},
    {"type": "ResizeOCR", "height": 48, "min_width": 48, "max_width": 160,
     "keep_aspect_ratio": True, "width_downsample_ratio": 0.25},
    {"type": "ToTensorOCR"},
    {"type": "NormalizeOCR", "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    {"type": "Collect", "keys": ["img"],
     "meta_keys": ["ori_shape", "resize_shape", "valid_ratio", "img_shape"]},
]  # fmt: skip
SIZES = {"d_model": 16, "d_k": 4, "d_v": 4, "d_inner": 32, "n_layers": 1, "n_head": 4}
R31 = {"type": "ResNet31OCR", "channels": [4, 8, 8, 8, 16, 16, 16]}
RECOGNIZERS: dict[str, dict[str, Any]] = {
    "SARNet": sar_config(),
    "NRTR": nrtr_config(
        {
            **R31,
            "layers": [1, 2, 5, 3],
            "channels": [4, 8, 8, 8, 16, 16],
            "stage4_pool_cfg": {"kernel_size": [2, 1], "stride": [2, 1]},
            "last_stage_pool": True,
        }
    ),  # fmt: skip
    "RobustScanner": {
        "type": "RobustScanner",
        "backbone": R31,
        "encoder": {"type": "ChannelReductionEncoder", "in_channels": 16, "out_channels": 8},
        "decoder": {"type": "RobustScannerDecoder", "dim_input": 16, "dim_model": 8},
        "label_convertor": {"type": "AttnConvertor", "dict_type": "DICT36"},
        "max_seq_len": 4,
    },  # fmt: skip
    "SATRN": {
        "type": "SATRN",
        "backbone": {"type": "ShallowCNN", "input_channels": 3, "hidden_dim": 16},
        "encoder": {"type": "SatrnEncoder", "n_position": 100, **SIZES},
        "decoder": {"type": "NRTRDecoder", "d_embedding": 16, **SIZES},
        "label_convertor": {"type": "AttnConvertor", "dict_type": "DICT90"},
        "max_seq_len": 5,
    },  # fmt: skip
}


def _predictor(model: dict[str, Any]) -> MMOCRPredictor:
    torch.manual_seed(0)
    weights = build_model(model).state_dict()
    return MMOCRPredictor({"model": model, "data": {"test": {"pipeline": PIPELINE}}}, weights)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Each recognizer exported once per module: kind -> path of its ONNX file."""
    paths: dict[str, Path] = {}

    def export(kind: str) -> Path:
        if kind not in paths:
            path = tmp_path_factory.mktemp("onnx") / f"{kind}.onnx"
            assert export_onnx(_predictor(RECOGNIZERS[kind]), path) < 1e-4
            paths[kind] = path
        return paths[kind]

    return export


@pytest.mark.parametrize("kind", RECOGNIZERS)
def test_recognizers_read_valid_ratio_from_a_dynamic_input(
    kind: str, exported: Callable[[str], Path]
) -> None:
    predictor = _predictor(RECOGNIZERS[kind])
    network = OnnxNetwork(exported(kind), threads=1)
    assert network.input_names == {"img", "valid_ratio"}
    # Another width and batch size than the export traced, a different ratio per image.
    img = torch.randn(3, 3, 48, 96)
    ratios = torch.tensor([1.0, 0.6, 0.3], dtype=torch.float64)
    got = network(img, ratios)
    with torch.inference_mode():
        want = predictor.model(img, [{"valid_ratio": r} for r in ratios.tolist()])
        unmasked = predictor.model(img, [{"valid_ratio": 1.0}] * 3)
    assert got.shape == want.shape
    diff = float((got - want).abs().max())
    assert diff <= 1e-5
    # The masks follow the input (they were not frozen at the traced ratios): masking moves
    # the (near-uniform, random-model) probabilities far more than ONNX Runtime does.
    assert float((want[2] - unmasked[2]).abs().max()) > 10 * diff


def test_predictor_feeds_each_samples_valid_ratio(exported: Callable[[str], Path]) -> None:
    predictor, onnx = _predictor(sar_config()), _predictor(sar_config())
    onnx.network = load_onnx_network("SARNet", exported("SARNet"), threads=1)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, w, 3), dtype=np.uint8) for w in (30, 60, 100, 200)]
    samples = [s for image in images for s in predictor.preprocess(image)]
    assert len({s.img.shape for s in samples}) == 1  # one batch, four valid ratios
    for a, b in zip(predictor.forward(samples), onnx.forward(samples)):
        assert float((a - b).abs().max()) <= 1e-5
    for a, b in zip(onnx.predict(images), predictor.predict(images)):
        assert a["text"] == b["text"] and a["score"] == pytest.approx(b["score"], abs=1e-6)


def test_nested_outputs_flatten_to_names_and_back() -> None:
    t = [torch.full((1,), float(i)) for i in range(4)]
    nested = ((t[0], t[1]), (t[2], t[3]))
    named = _flatten(nested)
    assert [n for n, _ in named] == ["out.0.0", "out.0.1", "out.1.0", "out.1.1"]
    assert _nest(named) == nested
    assert _nest(_flatten(t[0])) is t[0]
    with pytest.raises(ValueError, match="missing an index"):
        _nest([("out.0", t[0]), ("out.2", t[1])])


def test_tolerance_scales_with_large_outputs() -> None:
    assert onnx_tolerance(torch.tensor([0.5, -1.0])) == pytest.approx(1e-3)
    assert onnx_tolerance(torch.tensor([-360.0, 2.0])) == pytest.approx(0.36)


def test_refusals_name_the_reason() -> None:
    for kind in EXPORTABLE:
        check_exportable(kind)
    with pytest.raises(ArchiveError, match="FCENet is not exported: .*polygon NMS"):
        check_exportable("FCENet")
    assert set(REFUSED).isdisjoint(EXPORTABLE)
    with pytest.raises(ArchiveError, match="DRRG is not exported: its network is data-dependent"):
        check_exportable("DRRG")
    with pytest.raises(ArchiveError, match="NoDetector is not exported: its ONNX export has not"):
        check_exportable("NoDetector")
