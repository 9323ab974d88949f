"""MMOCR 0.6.3 parity of the recognition zoo (issues 9 and 21): SAR (parallel and sequential
decoders), NRTR, RobustScanner, SATRN, MASTER and ABINet (vision only, and with its language
model), on the slim fixtures of ``../shared/fixtures/mmocr-0.6.3/textrecog``.

Per fixture and image: the preprocessed tensor of every test-time variant (<= 1e-5), the raw
outputs of the backbone, the encoder and the decoder (<= 1e-4; for ABINet's language model, the
decoder and fuser of every iteration), the text (identical) and the
score or per-character scores (<= 1e-4). And per architecture: a state dict with the names and
shapes of ``keys_full.json`` loads strictly into the full-size model built from the original
config (the fixture's config with its ``slim_overrides`` undone).
"""

from __future__ import annotations

import copy
import json
import os
from functools import cache
from pathlib import Path
from typing import Any

# Set before any convolution runs, for the reason given in test_mmocr_parity.py: the fixtures
# were computed with oneDNN's AVX2 kernels.
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ocrserve.mmocr import load_config  # noqa: E402
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor  # noqa: E402
from ocrserve.mmocr.models.recognizers.abinet import ABINet  # noqa: E402
from ocrserve.mmocr.pipelines import Sample  # noqa: E402
from tests.prerequisites import SHARED, needs_shared  # noqa: E402

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
RECOG = FIXTURES / "textrecog"
MODELS = [
    "sar_r31_parallel_decoder_academic",
    "nrtr_r31_1by16_1by8_academic",
    "robustscanner_r31_academic",
    "satrn_small",
    "master_r31_12e_ST_MJ_SA",
    "abinet_vision_only_academic",
    "sar_r31_sequential_decoder_academic",
    "abinet_academic",
]
IMAGES = ["rec_100x32.png", "rec_160x48.jpg", "rec_64x32.png", "rec_32x100_vertical.png"]

pytestmark = needs_shared("fixtures/mmocr-0.6.3/textrecog", "fixtures/mmocr-0.6.3/images")

#: The original (full-size) values of each fixture's ``slim_overrides``, from MMOCR 0.6.3's
#: configs; `DEFAULT` where the original config left the key to the class default.
DEFAULT = object()
ORIGINAL_VALUES: dict[str, dict[str, Any]] = {
    "sar_r31_parallel_decoder_academic": {
        "model.backbone.channels": DEFAULT,
        "model.encoder.d_model": DEFAULT,
        "model.encoder.d_enc": DEFAULT,
        "model.decoder.d_model": DEFAULT,
        "model.decoder.d_enc": DEFAULT,
        "model.decoder.d_k": 512,
    },
    "sar_r31_sequential_decoder_academic": {
        "model.backbone.channels": DEFAULT,
        "model.encoder.d_model": DEFAULT,
        "model.encoder.d_enc": DEFAULT,
        "model.decoder.d_model": DEFAULT,
        "model.decoder.d_enc": DEFAULT,
        "model.decoder.d_k": 512,
    },
    "nrtr_r31_1by16_1by8_academic": {
        "model.backbone.channels": [32, 64, 128, 256, 512, 512],
        **{f"model.encoder.{k}": DEFAULT for k in ("d_model", "d_k", "d_v", "d_inner")},
        **{
            f"model.decoder.{k}": DEFAULT
            for k in ("d_embedding", "d_model", "d_k", "d_v", "d_inner")
        },
    },
    "robustscanner_r31_academic": {
        "model.backbone.channels": DEFAULT,
        "model.encoder.in_channels": 512,
        "model.encoder.out_channels": 128,
        "model.decoder.dim_input": 512,
        "model.decoder.dim_model": 128,
    },
    "satrn_small": {
        "model.backbone.hidden_dim": 256,
        **{
            f"model.{part}.{k}": v
            for part in ("encoder", "decoder")
            for k, v in {"d_model": 256, "d_k": 32, "d_v": 32, "d_inner": 1024}.items()
        },
        "model.decoder.d_embedding": 256,
    },
    "master_r31_12e_ST_MJ_SA": {
        "model.backbone.stem_channels": [64, 128],
        "model.backbone.arch_channels": [256, 256, 512, 512],
        "model.decoder.d_model": 512,
        "model.decoder.d_inner": 2048,
    },
    "abinet_vision_only_academic": {
        "model.backbone.stem_channels": DEFAULT,
        "model.backbone.base_channels": DEFAULT,
        "model.encoder.encoder.d_model": 512,
        "model.encoder.encoder.d_inner": 2048,
        "model.encoder.decoder.in_channels": 512,
        "model.encoder.decoder.num_channels": 64,
    },
    "abinet_academic": {
        "model.backbone.stem_channels": DEFAULT,
        "model.backbone.base_channels": DEFAULT,
        "model.encoder.encoder.d_model": 512,
        "model.encoder.encoder.d_inner": 2048,
        "model.encoder.decoder.in_channels": 512,
        "model.encoder.decoder.num_channels": 64,
        "model.decoder.d_model": 512,
        "model.decoder.d_inner": 2048,
        "model.fuser.d_model": 512,
    },
}


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _image(name: str) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(FIXTURES / "images" / name, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@cache
def _predictor(model: str) -> MMOCRPredictor:
    return MMOCRPredictor.from_files(
        RECOG / model / f"{model}.py", RECOG / model / "checkpoint.pth"
    )


def _meta(sample: Sample) -> dict[str, Any]:
    return {**sample.meta, "valid_ratio": sample.meta["resize_shape"][1] / sample.img.shape[-1]}


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("model", MODELS)
def test_stages_and_result(model: str, image: str) -> None:
    predictor = _predictor(model)
    stem = image.rsplit(".", 1)[0]
    tensors = np.load(RECOG / model / "base" / f"{stem}.tensors.npz")
    samples = predictor.preprocess(_image(image))
    metas = _json(RECOG / model / "base" / f"{stem}.meta.json")
    assert len(samples) == len(metas)
    for k, sample in enumerate(samples):
        for key in ("ori_shape", "img_shape", "resize_shape"):
            assert list(sample.meta[key]) == metas[k][0][key], key
        name = f"input.img.{k}" if f"input.img.{k}" in tensors else "input.img"
        assert _max_diff(sample.img[None], tensors[name]) <= 1e-5
        suffix = f"#{k}" if k else ""
        with torch.inference_mode():
            feat = predictor.model.extract_feat(torch.from_numpy(sample.img[None]))
            assert _max_diff(feat.numpy(), tensors[f"out.backbone{suffix}"]) <= 1e-4
            if predictor.model.encoder is None:
                continue
            encoded = predictor.model.encoder(feat.clone(), [_meta(sample)])
        if isinstance(encoded, dict):  # ABINet's vision model
            for key, value in encoded.items():
                assert _max_diff(value.numpy(), tensors[f"out.encoder{suffix}.{key}"]) <= 1e-4
        else:
            assert _max_diff(encoded.numpy(), tensors[f"out.encoder{suffix}"]) <= 1e-4
    outputs = predictor.forward(samples)
    for k, output in enumerate(outputs):
        name = f"out.decoder{'#' + str(k) if k else ''}"
        if name in tensors:
            assert _max_diff(output.numpy(), tensors[name]) <= 1e-4
    expected = _json(RECOG / model / "base" / f"{stem}.result.json")
    result = predictor.postprocess(samples, outputs)
    assert set(result) == {"text", "score"}
    assert result["text"] == expected["text"]
    if isinstance(expected["score"], list):  # NRTR: simple_test's per-character scores
        assert isinstance(result["score"], list)
        assert len(result["score"]) == len(expected["score"])
        assert max(abs(a - b) for a, b in zip(result["score"], expected["score"])) <= 1e-4
    else:
        assert abs(result["score"] - expected["score"]) <= 1e-4


@pytest.mark.parametrize("image", IMAGES)
def test_abinet_language_model_iterations(image: str) -> None:
    """ABINet with its language model: the language decoder and the fuser of every iteration of
    every test-time variant, numbered by call as the fixture's hooks numbered them (``#k``)."""
    model = "abinet_academic"
    predictor = _predictor(model)
    assert isinstance(predictor.model, ABINet)
    iters = predictor.model.iter_size
    tensors = np.load(RECOG / model / "base" / f"{image.rsplit('.', 1)[0]}.tensors.npz")
    for k, sample in enumerate(predictor.preprocess(_image(image))):
        with torch.inference_mode():
            stages = predictor.model.run(torch.from_numpy(sample.img[None]), [_meta(sample)])
        assert len(stages["decoders"]) == len(stages["fusers"]) == iters
        for i in range(iters):
            suffix = f"#{k * iters + i}" if k * iters + i else ""
            for key, value in stages["decoders"][i].items():
                assert _max_diff(value.numpy(), tensors[f"out.decoder{suffix}.{key}"]) <= 1e-4
            got = stages["fusers"][i]["logits"].numpy()
            assert _max_diff(got, tensors[f"out.fuser{suffix}.logits"]) <= 1e-4


@pytest.mark.parametrize("model", MODELS)
def test_predict_matches_the_fixture_results(model: str) -> None:
    predictor = _predictor(model)
    results = predictor.predict([_image(name) for name in IMAGES])
    for name, result in zip(IMAGES, results):
        expected = _json(RECOG / model / "base" / f"{name.rsplit('.', 1)[0]}.result.json")
        assert result["text"] == expected["text"]


def _unslimmed(config: dict[str, Any], model: str) -> dict[str, Any]:
    overrides = _json(RECOG / model / "fixture.json")["slim_overrides"]
    assert set(overrides) == set(ORIGINAL_VALUES[model])
    config = copy.deepcopy(config)
    for dotted, value in ORIGINAL_VALUES[model].items():
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        if value is DEFAULT:
            node.pop(leaf)
        else:
            node[leaf] = value
    return config


@pytest.mark.parametrize("model", MODELS)
def test_full_size_state_dict_loads_strictly(model: str) -> None:
    config = _unslimmed(load_config(RECOG / model / f"{model}.py"), model)
    keys = _json(RECOG / model / "keys_full.json")["keys"]
    state = {
        name: torch.zeros(
            shape, dtype=torch.int64 if name.endswith("num_batches_tracked") else None
        )
        for name, shape in keys
    }
    predictor = MMOCRPredictor(config, state)
    got = {k: list(v.shape) for k, v in predictor.model.state_dict().items()}
    assert got == dict((name, list(shape)) for name, shape in keys)
