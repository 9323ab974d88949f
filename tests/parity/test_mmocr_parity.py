"""MMOCR 0.6.3 parity: every fixture image of ``../shared/fixtures/mmocr-0.6.3`` (DBNet-r18 ``base``
and ``bias_shift``, CRNN), stage by stage, within the tolerances of issue 3.

Images are decoded with ``cv2.imdecode(IMREAD_COLOR)``, which is what ``mmcv.imfrombytes`` did in
MMOCR's TorchServe handler when the fixtures were made.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

# The fixtures were computed where oneDNN ran its AVX2 convolution kernels. On AVX-512 machines it
# picks other kernels whose float32 rounding differs: DBNet's binary map (a sigmoid of 50x the
# probability-threshold difference) then moves by ~1.1e-4, past the 1e-4 tolerance, although the
# polygons and scores still match. Capping the ISA compares kernel for kernel. oneDNN reads this
# when it creates its first primitive, so it must be set before any convolution runs (collection
# time is early enough).
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ocrserve.mmocr import load_checkpoint, load_config  # noqa: E402
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor  # noqa: E402
from tests.prerequisites import SHARED, needs_shared  # noqa: E402

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
DET = FIXTURES / "textdet" / "dbnet_r18_fpnc_1200e_icdar2015"
REC = FIXTURES / "textrecog" / "crnn_academic_dataset"
DET_IMAGES = ["det_640x640.png", "det_600x900.jpg", "det_1280x720.jpg"]
REC_IMAGES = ["rec_100x32.png", "rec_160x48.jpg", "rec_64x32.png", "rec_32x100_vertical.png"]
FIXTURE_OPENCV = "4.10.0"

pytestmark = needs_shared("fixtures/mmocr-0.6.3")


def _image(name: str) -> np.ndarray:
    data = np.fromfile(FIXTURES / "images" / name, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


@cache
def _predictor(kind: str) -> MMOCRPredictor:
    if kind == "crnn":
        return MMOCRPredictor.from_files(REC / "crnn_academic_dataset.py", REC / "checkpoint.pth")
    config = load_config(DET / "dbnet_r18_fpnc_1200e_icdar2015.py")
    state = dict(load_checkpoint(DET / "checkpoint.pth").state_dict)
    if kind == "bias_shift":
        shift = _json(DET / "bias_shift" / "shift.json")
        delta = torch.tensor(shift["delta"], dtype=torch.float32)
        state[shift["param"]] = state[shift["param"]] + delta
    return MMOCRPredictor(config, state)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.parametrize("variant", ["base", "bias_shift"])
@pytest.mark.parametrize("image", DET_IMAGES)
def test_dbnet_input_and_raw_output(variant: str, image: str) -> None:
    predictor = _predictor(variant)
    samples = predictor.preprocess(_image(image))
    assert len(samples) == 1
    meta = _json(DET / variant / f"{_stem(image)}.meta.json")[0][0]
    for key in ("ori_shape", "img_shape", "pad_shape"):
        assert list(samples[0].meta[key]) == meta[key], key
    assert samples[0].meta["scale_factor"].tolist() == meta["scale_factor"]
    tensors = np.load(DET / "base" / f"{_stem(image)}.tensors.npz")
    assert _max_diff(samples[0].img[None], tensors["input.img.0"]) <= 1e-5
    out_file = DET / variant / f"{_stem(image)}.tensors.npz"
    if out_file.exists() and "out.bbox_head" in np.load(out_file):
        raw = predictor.forward(samples)[0].numpy()
        assert _max_diff(raw, np.load(out_file)["out.bbox_head"]) <= 1e-4, (
            "raw DBNet output differs; if only the binary map (channel 2) is off by ~1e-4, a "
            "convolution ran before DNNL_MAX_CPU_ISA was set (see the top of this file)"
        )


@pytest.mark.skipif(
    not cv2.__version__.startswith("4."),
    reason=f"the fixtures were made with OpenCV {FIXTURE_OPENCV}; OpenCV {cv2.__version__} "
    "returns minAreaRect/boxPoints vertices in another order and fills self-intersecting "
    "polygons (DB box scores) differently, so MMOCR itself answers differently there: "
    f"install opencv-python-headless=={FIXTURE_OPENCV}.84",
)
@pytest.mark.parametrize("variant", ["base", "bias_shift"])
@pytest.mark.parametrize("image", DET_IMAGES)
def test_dbnet_boundaries(variant: str, image: str) -> None:
    expected = _json(DET / variant / f"{_stem(image)}.result.json")
    result = _predictor(variant).predict([_image(image)])[0]
    assert set(result) == {"boundary_result", "filename"} and result["filename"] is None
    got, want = result["boundary_result"], expected["boundary_result"]
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
        assert len(g) == len(w)
        assert max(abs(a - b) for a, b in zip(g[:-1], w[:-1])) <= 0.5
        assert abs(g[-1] - w[-1]) <= 1e-4


@pytest.mark.parametrize("image", REC_IMAGES)
def test_crnn(image: str) -> None:
    predictor = _predictor("crnn")
    stem = _stem(image)
    samples = predictor.preprocess(_image(image))
    assert len(samples) == 1
    meta = _json(REC / "base" / f"{stem}.meta.json")[0][0]
    for key in ("ori_shape", "img_shape", "resize_shape"):
        assert list(samples[0].meta[key]) == meta[key], key
    tensors = np.load(REC / "base" / f"{stem}.tensors.npz")
    assert _max_diff(samples[0].img[None], tensors["input.img.0"]) <= 1e-5
    with torch.inference_mode():
        features = predictor.model.backbone(torch.from_numpy(samples[0].img[None]))
    assert _max_diff(features.numpy(), tensors["out.backbone"]) <= 1e-4
    outputs = predictor.forward(samples)
    assert _max_diff(outputs[0].numpy(), tensors["out.decoder"]) <= 1e-4
    expected = _json(REC / "base" / f"{stem}.result.json")
    result = predictor.postprocess(samples, outputs)
    assert set(result) == {"text", "score"}
    assert result["text"] == expected["text"]
    assert abs(result["score"] - expected["score"]) <= 1e-4


def test_batches_give_the_single_image_answers() -> None:
    for kind, names in (("crnn", REC_IMAGES), ("base", DET_IMAGES)):
        predictor = _predictor(kind)
        images = [_image(n) for n in names]
        images.append(images[0].copy())  # a repeated shape is stacked into one batch
        batched = predictor.predict(images)
        single = [predictor.predict([image])[0] for image in images]
        for b, s in zip(batched, single):
            if kind == "crnn":
                assert b["text"] == s["text"] and abs(b["score"] - s["score"]) <= 1e-6
            else:
                assert len(b["boundary_result"]) == len(s["boundary_result"])
                for u, v in zip(b["boundary_result"], s["boundary_result"]):
                    assert np.allclose(u, v, atol=1e-4)


def test_mmocr1_key_names_load_and_answer_the_same() -> None:
    config = load_config(DET / "dbnet_r18_fpnc_1200e_icdar2015.py")
    state = load_checkpoint(DET / "checkpoint.pth").state_dict
    renamed = {
        ("det_head." + k[len("bbox_head.") :] if k.startswith("bbox_head.") else k): v
        for k, v in state.items()
    }
    assert any(k.startswith("det_head.") for k in renamed)
    predictor = MMOCRPredictor(config, renamed)
    samples = predictor.preprocess(_image("det_640x640.png"))
    raw = predictor.forward(samples)[0].numpy()
    assert _max_diff(raw, _predictor("base").forward(samples)[0].numpy()) == 0.0
