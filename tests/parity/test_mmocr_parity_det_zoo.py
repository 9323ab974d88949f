"""MMOCR 0.6.3 parity for the rest of the text detection zoo (issue 9): DBNet++ (DCNv2), PANet,
PSENet, FCENet, TextSnake, on the slim fixtures of ``../shared/fixtures/mmocr-0.6.3/textdet``.

Per fixture and image: the preprocessed tensor, the raw head output where it was kept, and the
``model_inference`` result (``base`` and ``bias_shift`` weights) within the tolerances of issue 3;
and a state dict with the names and shapes of ``keys_full.json`` loads strictly into the
full-size model built from the unslimmed config. The backbone and neck run once per image: the
two variants differ only in the head's last bias, so their features are shared.

TextSnake's result can hang on a centre point that float32 noise decides (`_undecided_centres`):
there the test accepts MMOCR's result if deciding that one point the other way gives it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from functools import cache
from itertools import count, product
from pathlib import Path
from typing import Any

# See tests/parity/test_mmocr_parity.py: the fixtures were computed with oneDNN's AVX2 kernels.
# DCNv2's column GEMM goes through MKL, which likewise picks other kernels (other float32
# rounding) on AVX-512 machines: DBNet++'s binary map then moves by ~1.1e-4 instead of ~6e-5.
# Both are read when the first primitive runs, so setting them at collection time is enough.
os.environ.setdefault("DNNL_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("MKL_ENABLE_INSTRUCTIONS", "AVX2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ocrserve.mmocr import load_checkpoint, load_config  # noqa: E402
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor  # noqa: E402
from ocrserve.mmocr.models import build_model  # noqa: E402
from ocrserve.mmocr.pipelines.postprocess import textsnake  # noqa: E402
from tests.prerequisites import SHARED, needs_shared  # noqa: E402

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
TEXTDET = FIXTURES / "textdet"
IMAGES = ["det_640x640.png", "det_600x900.jpg", "det_1280x720.jpg"]
VARIANTS = ["base", "bias_shift"]
MODELS = [
    "dbnetpp_r50dcnv2_fpnc_1200e_icdar2015",
    "panet_r18_fpem_ffm_600e_icdar2015",
    "psenet_r50_fpnf_600e_icdar2015",
    "fcenet_r50_fpn_1500e_icdar2015",
    "textsnake_r50_fpn_unet_1200e_ctw1500",
]
TEXTSNAKE = "textsnake_r50_fpn_unet_1200e_ctw1500"
#: How far our raw head output may be from MMOCR's (issue 3's tolerance for raw outputs).
RAW_TOLERANCE = 1e-4
_ABSENT = object()
#: The values ``slim_overrides`` replaced, as MMOCR 0.6.3's configs set them (absent: default).
ORIGINAL_VALUES: dict[str, dict[str, Any]] = {
    "dbnetpp_r50dcnv2_fpnc_1200e_icdar2015": {
        "model.backbone.base_channels": _ABSENT,
        "model.neck.in_channels": [256, 512, 1024, 2048],
        "model.neck.lateral_channels": 256,
        "model.neck.out_channels": _ABSENT,
        "model.bbox_head.in_channels": 256,
    },
    "panet_r18_fpem_ffm_600e_icdar2015": {
        "model.backbone.base_channels": _ABSENT,
        "model.neck.in_channels": [64, 128, 256, 512],
        "model.neck.conv_out": _ABSENT,
        "model.bbox_head.in_channels": [128, 128, 128, 128],
    },
    "psenet_r50_fpnf_600e_icdar2015": {
        "model.backbone.base_channels": _ABSENT,
        "model.neck.in_channels": [256, 512, 1024, 2048],
    },
    "fcenet_r50_fpn_1500e_icdar2015": {
        "model.backbone.base_channels": _ABSENT,
        "model.neck.in_channels": [512, 1024, 2048],
        "model.neck.out_channels": 256,
        "model.bbox_head.in_channels": 256,
    },
    "textsnake_r50_fpn_unet_1200e_ctw1500": {
        "model.backbone.base_channels": _ABSENT,
        "model.neck.in_channels": [256, 512, 1024, 2048],
        "model.neck.out_channels": 32,
        "model.bbox_head.in_channels": 32,
    },
}

pytestmark = needs_shared("fixtures/mmocr-0.6.3/textdet", "fixtures/mmocr-0.6.3/images")


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


@cache
def _image(name: str) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(FIXTURES / "images" / name, dtype=np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


@cache
def _predictor(model: str, variant: str) -> MMOCRPredictor:
    folder = TEXTDET / model
    config = load_config(folder / f"{model}.py")
    state = {k: v.float() for k, v in load_checkpoint(folder / "checkpoint.pth").state_dict.items()}
    if variant == "bias_shift":
        shift = _json(folder / "bias_shift" / "shift.json")
        delta = torch.tensor(shift["delta"], dtype=torch.float32)
        state[shift["param"]] = state[shift["param"]] + delta
    return MMOCRPredictor(config, state)


@cache
def _features(model: str, image: str) -> Any:
    predictor = _predictor(model, "base")
    samples = predictor.preprocess(_image(image))
    with torch.inference_mode():
        return predictor.model.extract_feat(torch.from_numpy(samples[0].img[None]))


@cache
def _raw(model: str, variant: str, image: str) -> Any:
    """The head output as `MMOCRPredictor.forward` returns it (CPU tensors, batch axis 1)."""
    predictor = _predictor(model, variant)
    with torch.inference_mode():
        return predictor.model.bbox_head(_features(model, image))


def _part(out: Any, key: str) -> np.ndarray:
    """``out.bbox_head.0.1`` -> ``out[0][1]`` as numpy."""
    for index in key.split(".")[2:]:
        out = out[int(index)]
    return out.numpy()


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("model", MODELS)
def test_input_tensor_and_meta(model: str, image: str) -> None:
    samples = _predictor(model, "base").preprocess(_image(image))
    assert len(samples) == 1
    meta = _json(TEXTDET / model / "base" / f"{_stem(image)}.meta.json")[0][0]
    for key in ("ori_shape", "img_shape", "pad_shape"):
        assert list(samples[0].meta[key]) == meta[key], key
    assert samples[0].meta["scale_factor"].tolist() == meta["scale_factor"]
    tensors = np.load(TEXTDET / model / "base" / f"{_stem(image)}.tensors.npz")
    assert _max_diff(samples[0].img[None], tensors["input.img.0"]) <= 1e-5


def _raw_cases() -> list[tuple[str, str, str]]:
    cases = []
    for model in MODELS:
        for variant in VARIANTS:
            for image in IMAGES:
                path = TEXTDET / model / variant / f"{_stem(image)}.tensors.npz"
                if path.exists() and any(k.startswith("out.") for k in np.load(path).files):
                    cases.append((model, variant, image))
    return cases


@pytest.mark.parametrize(("model", "variant", "image"), _raw_cases() if TEXTDET.is_dir() else [])
def test_raw_head_output(model: str, variant: str, image: str) -> None:
    stored = np.load(TEXTDET / model / variant / f"{_stem(image)}.tensors.npz")
    raw = _raw(model, variant, image)
    keys = [k for k in stored.files if k.startswith("out.")]
    for key in keys:
        assert _max_diff(_part(raw, key), stored[key]) <= RAW_TOLERANCE, key


def _mismatch(got: list[list[float]], want: list[list[float]]) -> str | None:
    """Why ``got`` is not MMOCR's ``want`` within the parity tolerances, or None if it is."""
    if len(got) != len(want):
        return f"{len(got)} boundaries, MMOCR {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if len(g) != len(w):
            return f"boundary {i}: {len(g)} values, MMOCR {len(w)}"
        if max(abs(a - b) for a, b in zip(g[:-1], w[:-1])) > 0.5:
            return f"boundary {i}: a vertex over 0.5 px from MMOCR's"
        if abs(g[-1] - w[-1]) > 1e-4:
            return f"boundary {i}: score {g[-1]:.6f}, MMOCR {w[-1]:.6f}"
    return None


#: Centre point: (index of the centre region, skeleton point y, x), in `centralize`'s call order.
CentrePoint = tuple[int, int, int]


def _undecided_centres(
    predictor: MMOCRPredictor, samples: Any, raw: Any
) -> dict[CentrePoint, set[tuple[int, int]]]:
    """TextSnake's centre points that head outputs within `RAW_TOLERANCE` of ``raw`` move: the
    int centres (y, x) they then get, besides the one ``raw`` gives.

    `centralize` walks each skeleton point both ways in steps of 0.03 x the predicted radius and
    truncates the midpoint of the two ends. A radius near 0 makes thousands of tiny steps; where
    each end stops within its last step, and so on which side of an integer the midpoint lies, is
    then set by the last bits of the radius and direction, which other kernels (thread counts,
    instruction sets) change. Found by decoding with the sin, cos and radius maps shifted by up to
    `RAW_TOLERANCE` (the text maps, hence the regions and skeletons, stay as they are), so every
    centre listed is one that maps within the tolerance give.
    """
    runs: list[list[np.ndarray]] = []  # per run, per centre region: the (y, x, centre y, x) rows
    real = textsnake.centralize

    def recording(*args: Any, **kwargs: Any) -> np.ndarray:
        centres = real(*args, **kwargs)
        runs[-1].append(np.hstack([args[0], centres]))
        return centres

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(textsnake, "centralize", recording)
        for shift in [(0, 0, 0), *product((-1, 1), (-1, 1), (-1, -0.5, 0.5, 1))]:
            maps = raw.clone()
            maps[:, 2:5] += torch.tensor(shift).view(1, 3, 1, 1).float() * RAW_TOLERANCE
            runs.append([])
            predictor.postprocess(samples, [maps])
    undecided: dict[CentrePoint, set[tuple[int, int]]] = {}
    for run in runs[1:]:
        for region, (ours, theirs) in enumerate(zip(runs[0], run)):
            for y, x, cy, cx in theirs[(theirs != ours).any(axis=1)].tolist():
                undecided.setdefault((region, y, x), set()).add((cy, cx))
    return undecided


def _decided_otherwise(
    predictor: MMOCRPredictor, samples: Any, raw: Any, point: CentrePoint, centre: tuple[int, int]
) -> list[list[float]]:
    """The boundaries from ``raw`` with the centre of ``point`` set to ``centre``."""
    real, regions = textsnake.centralize, count()

    def deciding(*args: Any, **kwargs: Any) -> np.ndarray:
        centres = real(*args, **kwargs)
        if next(regions) == point[0]:
            centres[(args[0] == point[1:]).all(axis=1)] = centre
        return centres

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(textsnake, "centralize", deciding)
        return predictor.postprocess(samples, [raw])["boundary_result"]


def _readings(predictor: MMOCRPredictor, samples: Any, raw: Any) -> Iterator[list[list[float]]]:
    """The boundaries with one undecided TextSnake centre point decided the other way."""
    for point, centres in _undecided_centres(predictor, samples, raw).items():
        for centre in sorted(centres):
            yield _decided_otherwise(predictor, samples, raw, point, centre)


@pytest.mark.parametrize("image", IMAGES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", MODELS)
def test_boundaries(model: str, variant: str, image: str) -> None:
    predictor = _predictor(model, variant)
    samples = predictor.preprocess(_image(image))
    raw = _raw(model, variant, image)
    result = predictor.postprocess(samples, [raw])
    expected = _json(TEXTDET / model / variant / f"{_stem(image)}.result.json")
    assert set(result) == set(expected)
    got, want = result["boundary_result"], expected["boundary_result"]
    # TextSnake's random weights give boundaries on det_600x900 only (see
    # test_every_model_has_boundaries_to_compare).
    mismatch = _mismatch(got, want)
    if mismatch is not None and model == TEXTSNAKE:
        # Not a wider tolerance: one centre point that float32 noise decides, decided MMOCR's way.
        explained = any(_mismatch(r, want) is None for r in _readings(predictor, samples, raw))
        assert explained, f"{mismatch}, and no undecided centre point explains it"
    else:
        assert mismatch is None, mismatch


def test_textsnake_centre_that_float_noise_decides() -> None:
    """Why TextSnake's bias_shift det_600x900 score was 0.508464, not MMOCR's 0.508778, on an
    AVX2-only machine: skeleton point (1117, 2) has a radius of -0.009, so it walks 48,199 steps
    of 2.7e-4 px to the right and its midpoint lands 2e-5 px from x = 8. Head outputs within
    `RAW_TOLERANCE` put its centre at x 7 (MMOCR's) or 8, a choice that alone moves the score by
    3.1e-4 (here: 3 torch threads, or DNNL_MAX_CPU_ISA=AVX, give 8). So `test_boundaries` lets
    such points be decided either way."""
    variant, image = "bias_shift", "det_600x900.jpg"
    predictor = _predictor(TEXTSNAKE, variant)
    samples = predictor.preprocess(_image(image))
    raw = _raw(TEXTSNAKE, variant, image)
    want = _json(TEXTDET / TEXTSNAKE / variant / f"{_stem(image)}.result.json")["boundary_result"]
    point = (0, 1117, 2)
    centres = _undecided_centres(predictor, samples, raw)[point]
    readings = [
        predictor.postprocess(samples, [raw])["boundary_result"],
        *(_decided_otherwise(predictor, samples, raw, point, c) for c in sorted(centres)),
    ]
    assert [c[1] for c in centres] in ([7], [8])
    assert sorted(r[0][-1] for r in readings) == pytest.approx([0.508464, 0.508778], abs=1e-6)
    assert [_mismatch(r, want) is None for r in readings].count(True) == 1


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_has_boundaries_to_compare(model: str, variant: str) -> None:
    counts = [
        len(_json(TEXTDET / model / variant / f"{_stem(image)}.result.json")["boundary_result"])
        for image in IMAGES
    ]
    assert max(counts) > 0, counts


def test_whole_predict_equals_the_staged_result() -> None:
    model = "panet_r18_fpem_ffm_600e_icdar2015"
    expected = _json(TEXTDET / model / "base" / "det_640x640.result.json")
    result = _predictor(model, "base").predict([_image("det_640x640.png")])[0]
    assert len(result["boundary_result"]) == len(expected["boundary_result"])
    for g, w in zip(result["boundary_result"], expected["boundary_result"]):
        assert np.allclose(g, w, atol=1e-4)


def _unslimmed(model: str) -> dict[str, Any]:
    config = load_config(TEXTDET / model / f"{model}.py")
    overrides = _json(TEXTDET / model / "fixture.json")["slim_overrides"]
    assert set(overrides) == set(ORIGINAL_VALUES[model])
    for dotted in overrides:
        *parents, leaf = dotted.split(".")
        node = config
        for key in parents:
            node = node[key]
        original = ORIGINAL_VALUES[model][dotted]
        if original is _ABSENT:
            del node[leaf]
        else:
            node[leaf] = original
    return config


@pytest.mark.parametrize("model", MODELS)
def test_full_size_state_dict_loads_strictly(model: str) -> None:
    full = _json(TEXTDET / model / "keys_full.json")
    shapes = {name: tuple(shape) for name, shape in full["keys"]}
    assert len(shapes) == full["num_keys"]
    network = build_model(_unslimmed(model)["model"])
    ours = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    assert ours == shapes
    state = {
        k: torch.zeros(s, dtype=torch.int64 if k.endswith("num_batches_tracked") else None)
        for k, s in shapes.items()
    }
    network.load_state_dict(state, strict=True)
