"""``--runtime onnx`` against the MMOCR 0.6.3 parity fixtures, per architecture.

Each exportable architecture is exported once (`export_onnx`: ONNX Runtime vs PyTorch on a
synthetic input, within `onnx_tolerance`) and then served as an ONNX archive serves it, by
`OnnxMMOCRPredictor` (no torch: numpy/OpenCV pre- and post-processing) over the fixture images:
the raw output against MMOCR's where the fixture kept it (within `onnx_tolerance`), the final
result against MMOCR's ``result.json`` within the parity tolerances (polygons <= 0.5 px, same
count; text identical; scores <= 1e-4). Recognizers run at their fixed height and the images'
widths; the vertical image takes the test-time-augmentation path (three rotations, one batch)
where the config has ``MultiRotateAugOCR``. FCENet is refused, for the reason checked below.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

from ocrserve.errors import ArchiveError
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
from ocrserve.mmocr.onnx_export import (
    _flatten,
    export_onnx,
    load_onnx_network,
    model_type,
    onnx_tolerance,
)
from ocrserve.mmocr.onnx_predictor import OnnxMMOCRPredictor, serving_spec
from tests.prerequisites import SHARED, needs_shared

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
DET_IMAGES = ["det_640x640.png", "det_600x900.jpg", "det_1280x720.jpg"]
REC_IMAGES = ["rec_100x32.png", "rec_160x48.jpg", "rec_64x32.png", "rec_32x100_vertical.png"]
#: config stem -> (task, images). PSENet runs at 2240 px (~15 s an image on two cores): only
#: the image whose raw maps the fixture kept.
MODELS: dict[str, tuple[str, list[str]]] = {
    "dbnet_r18_fpnc_1200e_icdar2015": ("textdet", DET_IMAGES),
    "dbnetpp_r50dcnv2_fpnc_1200e_icdar2015": ("textdet", DET_IMAGES),
    "panet_r18_fpem_ffm_600e_icdar2015": ("textdet", DET_IMAGES),
    "psenet_r50_fpnf_600e_icdar2015": ("textdet", ["det_1280x720.jpg"]),
    "textsnake_r50_fpn_unet_1200e_ctw1500": ("textdet", DET_IMAGES),
    "crnn_academic_dataset": ("textrecog", REC_IMAGES),
    "sar_r31_parallel_decoder_academic": ("textrecog", REC_IMAGES),
    "nrtr_r31_1by16_1by8_academic": ("textrecog", REC_IMAGES),
    "robustscanner_r31_academic": ("textrecog", REC_IMAGES),
    "satrn_small": ("textrecog", REC_IMAGES),
    "master_r31_12e_ST_MJ_SA": ("textrecog", REC_IMAGES),
    "abinet_vision_only_academic": ("textrecog", REC_IMAGES),
    "sar_r31_sequential_decoder_academic": ("textrecog", REC_IMAGES),
    "abinet_academic": ("textrecog", REC_IMAGES),
    "crnn_tps_academic_dataset": ("textrecog", REC_IMAGES),
    "seg_r31_1by16_fpnocr_academic": ("textrecog", REC_IMAGES),
}

pytestmark = needs_shared("fixtures/mmocr-0.6.3")


def _predictor(task: str, stem: str) -> MMOCRPredictor:
    folder = FIXTURES / task / stem
    return MMOCRPredictor.from_files(folder / f"{stem}.py", folder / "checkpoint.pth")


def _image(name: str) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(FIXTURES / "images" / name, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], OnnxMMOCRPredictor]:
    """Each model exported once per module: stem -> its ONNX archive's predictor."""
    predictors: dict[str, OnnxMMOCRPredictor] = {}

    def export(stem: str) -> OnnxMMOCRPredictor:
        if stem not in predictors:
            predictor = _predictor(MODELS[stem][0], stem)
            path = tmp_path_factory.mktemp("onnx") / f"{stem}.onnx"
            export_onnx(predictor, path)
            network = load_onnx_network(model_type(predictor), path, torch.get_num_threads())
            spec = json.loads(json.dumps(serving_spec(predictor, {})))  # as the manifest holds it
            predictors[stem] = OnnxMMOCRPredictor(predictor.config, spec, network)
        return predictors[stem]

    return export


def _stored_raw(stem: str, image: str, k: int) -> dict[str, np.ndarray]:
    """MMOCR's raw network output for test-time variant ``k``, by ONNX output name, if kept."""
    tensors = np.load(
        FIXTURES / MODELS[stem][0] / stem / "base" / f"{Path(image).stem}.tensors.npz"
    )
    suffix = f"#{k}" if k else ""
    if "out.fuser.logits" in tensors:  # ABINet: the softmax of the variant's last fuser logits
        variants = sum(name.startswith("input.img") for name in tensors.files)
        iters = sum(name.startswith("out.fuser") for name in tensors.files) // variants
        logits = torch.from_numpy(tensors[f"out.fuser#{k * iters + iters - 1}.logits"])
        return {"out": logits.softmax(dim=-1).numpy()}
    if f"out.encoder{suffix}.logits" in tensors:  # ABINet vision only: the vision logits
        logits = torch.from_numpy(tensors[f"out.encoder{suffix}.logits"])
        return {"out": logits.softmax(dim=-1).numpy()}
    if "out.head" in tensors:  # SegOCR: the head's class map
        return {"out": tensors["out.head"]}
    prefix = "out.bbox_head" if MODELS[stem][0] == "textdet" else f"out.decoder{suffix}"
    return {"out" + k[len(prefix) :]: tensors[k] for k in tensors.files if k.startswith(prefix)}


def _check_result(task: str, got: dict[str, Any], expected: dict[str, Any]) -> None:
    if task == "textrecog":
        assert got["text"] == expected["text"]
        # (NRTR's score is simple_test's list of per-character scores)
        assert got["score"] == pytest.approx(expected["score"], abs=1e-4)
        return
    assert len(got["boundary_result"]) == len(expected["boundary_result"])
    for a, b in zip(got["boundary_result"], expected["boundary_result"]):
        assert len(a) == len(b)
        assert max(abs(x - y) for x, y in zip(a[:-1], b[:-1])) <= 0.5
        assert a[-1] == pytest.approx(b[-1], abs=1e-4)


@pytest.mark.parametrize("stem", MODELS)
def test_onnx_runtime_matches_the_fixtures(
    stem: str, exported: Callable[[str], OnnxMMOCRPredictor]
) -> None:
    task, images = MODELS[stem]
    predictor = exported(stem)
    compared = 0
    for image in images:
        samples = predictor.preprocess(_image(image))
        outputs = predictor.forward(samples)
        for k, output in enumerate(outputs):
            stored = _stored_raw(stem, image, k)
            for name, value in _flatten(output):
                if name in stored:
                    want = torch.from_numpy(stored[name])
                    assert value.shape == want.shape, name
                    diff = float((torch.from_numpy(value) - want).abs().max())
                    assert diff <= onnx_tolerance(want), name
                    compared += 1
        folder = FIXTURES / task / stem / "base"
        expected = json.loads((folder / f"{Path(image).stem}.result.json").read_text())
        _check_result(task, predictor.postprocess(samples, outputs), expected)
    assert compared  # every fixture kept at least one raw output


def test_fcenet_is_refused_with_the_reason(tmp_path: Path) -> None:
    predictor = _predictor("textdet", "fcenet_r50_fpn_1500e_icdar2015")
    with pytest.raises(ArchiveError, match="FCENet is not exported: .* polygon NMS .*510 px"):
        export_onnx(predictor, tmp_path / "fcenet.onnx")
    assert not (tmp_path / "fcenet.onnx").exists()
