"""Detection test pipeline pieces: loading, Resize rounding, Normalize, Pad, Collect, selection."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines import build_pipeline, select_test_pipeline, to_samples
from ocrserve.mmocr.pipelines.load_image import exif_orientation_for
from ocrserve.mmocr.pipelines.transforms import rescale_size

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
DBNET_TEST_PIPELINE: list[dict[str, Any]] = [
    {"type": "LoadImageFromFile", "color_type": "color_ignore_orientation"},
    {
        "type": "MultiScaleFlipAug",
        "img_scale": [1333, 736],
        "flip": False,
        "transforms": [
            {"type": "Resize", "keep_ratio": True},
            {"type": "Normalize", "mean": MEAN, "std": STD, "to_rgb": True},
            {"type": "Pad", "size_divisor": 32},
            {"type": "ImageToTensor", "keys": ["img"]},
            {"type": "Collect", "keys": ["img"]},
        ],
    },
]


@pytest.mark.parametrize(
    "w, h, new",
    [
        (640, 640, (736, 736)),
        (600, 900, (736, 1104)),
        (1280, 720, (1308, 736)),
        (2000, 100, (1333, 67)),
    ],
)
def test_keep_ratio_scale_rounds_like_mmcv(w: int, h: int, new: tuple[int, int]) -> None:
    assert rescale_size((w, h), (1333, 736)) == new


def test_dbnet_pipeline() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    samples = to_samples(build_pipeline(DBNET_TEST_PIPELINE)({"img": img}))
    assert len(samples) == 1
    sample = samples[0]
    assert sample.img.shape == (3, 736, 1312) and sample.img.dtype == np.float32
    meta = sample.meta
    assert meta["ori_shape"] == (720, 1280, 3) and meta["img_shape"] == (736, 1308, 3)
    assert meta["pad_shape"] == (736, 1312, 3) and meta["filename"] is None
    assert meta["scale_factor"].dtype == np.float32
    assert (
        meta["scale_factor"].tolist()
        == np.array([1308 / 1280, 736 / 720] * 2, dtype=np.float32).tolist()
    )
    assert meta["flip"] is False and meta["flip_direction"] is None
    assert not sample.img[:, :, 1308:].any()  # padded with 0 after normalisation
    # channel 0 is the red channel (BGR -> RGB), normalised
    import cv2

    resized = cv2.resize(img, (1308, 736), interpolation=cv2.INTER_LINEAR)
    red = (resized[:, :, 2].astype(np.float64) - MEAN[0]) / STD[0]
    assert np.abs(sample.img[0, :, :1308] - red).max() < 1e-5


def test_normalize_grayscale_ignores_to_rgb() -> None:
    pipeline = build_pipeline([{"type": "Normalize", "mean": [127], "std": [127]}])
    out = pipeline({"img": np.full((2, 3), 254, np.uint8)})
    assert out["img"].shape == (2, 3) and np.allclose(out["img"], 1.0)
    assert out["img_norm_cfg"]["to_rgb"] is True


@pytest.mark.parametrize("to_rgb", [True, False])
def test_normalize_of_uint8_is_bit_identical_to_mmcv_arithmetic(to_rgb: bool) -> None:
    """uint8 images go through a per-value table; floats through mmcv's per-pixel steps: the
    same float32 bits either way."""
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    img[:16, :16] = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)  # every value, each channel
    pipeline = build_pipeline([{"type": "Normalize", "mean": MEAN, "std": STD, "to_rgb": to_rgb}])
    looked_up = pipeline({"img": img})["img"]
    computed = pipeline({"img": img.astype(np.float32)})["img"]
    assert looked_up.dtype == computed.dtype == np.float32
    assert looked_up.shape == (31, 47, 3) and np.array_equal(looked_up, computed)
    source = img[:, :, ::-1] if to_rgb else img
    mmcv = (source.astype(np.float64) - np.float32(MEAN).astype(np.float64)).astype(np.float32)
    mmcv = (mmcv.astype(np.float64) * (1 / np.float32(STD).astype(np.float64))).astype(np.float32)
    assert np.array_equal(looked_up, mmcv)


def test_pad_and_format_bundle_defaults() -> None:
    pipeline = build_pipeline(
        [
            {"type": "Pad", "size": [4, 6], "pad_val": {"img": 7, "masks": 0, "seg": 255}},
            {"type": "DefaultFormatBundle"},
            {"type": "Collect", "keys": ["img"], "meta_keys": ["pad_shape", "img_norm_cfg"]},
        ]
    )
    out = pipeline({"img": np.ones((3, 5), np.float32)})
    assert out["img"].shape == (1, 4, 6) and out["img"][0, 3, 5] == 7
    assert out["img_metas"]["pad_shape"] == (4, 6)
    assert out["img_metas"]["img_norm_cfg"]["to_rgb"] is False
    with pytest.raises(ConfigError, match="exactly one of size and size_divisor"):
        build_pipeline([{"type": "Pad"}])


def test_collect_names_what_is_missing() -> None:
    pipeline = build_pipeline([{"type": "Collect", "keys": ["img"], "meta_keys": ["valid_ratio"]}])
    with pytest.raises(ConfigError, match="did not produce valid_ratio"):
        pipeline({"img": np.zeros((2, 2, 3), np.uint8)})
    with pytest.raises(ConfigError, match="must end with Collect"):
        to_samples({"img": np.zeros((3, 2, 2), np.float32)})


def test_unknown_transform_lists_supported() -> None:
    with pytest.raises(
        ConfigError, match=r"pipeline transform type 'PhotoMetricDistortion'; supported: .*Resize"
    ):
        build_pipeline([{"type": "PhotoMetricDistortion"}])
    with pytest.raises(ConfigError, match="random flips"):  # Mask R-CNN's has no flip_ratio
        build_pipeline([{"type": "RandomFlip", "flip_ratio": 0.5}])
    with pytest.raises(ConfigError, match="list of transform dicts"):
        build_pipeline({"type": "Resize"})  # type: ignore[arg-type]


def test_resize_rejects_random_settings() -> None:
    with pytest.raises(ConfigError, match="ratio_range"):
        build_pipeline([{"type": "Resize", "img_scale": [100, 50], "ratio_range": [0.5, 2.0]}])
    resize = build_pipeline([{"type": "Resize", "img_scale": [[100, 50], [200, 100]]}])
    with pytest.raises(ConfigError, match="at random"):
        resize({"img": np.zeros((10, 10, 3), np.uint8)})
    fixed = build_pipeline([{"type": "Resize", "img_scale": [40, 20], "keep_ratio": False}])
    out = fixed({"img": np.zeros((10, 10, 3), np.uint8)})
    assert out["img"].shape == (20, 40, 3) and out["scale_factor"].tolist() == [4, 2, 4, 2]


def test_loading_colour_types() -> None:
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 2] = 255  # red
    gray = build_pipeline([{"type": "LoadImageFromFile", "color_type": "grayscale"}])({"img": bgr})
    assert gray["img"].shape == (2, 2, 1) and gray["img"][0, 0, 0] == 76  # cv2 BGR2GRAY
    assert gray["ori_shape"] == (2, 2, 1) and gray["filename"] is None
    one = np.zeros((2, 2, 1), np.uint8)
    colour = build_pipeline([{"type": "LoadImageFromNdarray"}])({"img": one})
    assert colour["img"].shape == (2, 2, 3)
    kept = build_pipeline([{"type": "LoadImageFromFile", "color_type": "unchanged"}])({"img": one})
    assert kept["img"].shape == (2, 2, 1)
    assert exif_orientation_for("color") and exif_orientation_for("grayscale")
    assert not exif_orientation_for("color_ignore_orientation")


def test_select_test_pipeline_like_model_inference() -> None:
    a, b = [{"type": "A"}], [{"type": "B"}]
    assert select_test_pipeline({"data": {"test": {"pipeline": a}}}) == a
    assert select_test_pipeline({"data": {"test": {"pipeline": [a, b]}}}) == a
    datasets = {"pipeline": None, "datasets": [{"pipeline": b}, {"pipeline": a}]}
    assert select_test_pipeline({"data": {"test": datasets}}) == b
    nested = {"pipeline": None, "datasets": [[{"pipeline": a}], [{"pipeline": b}]]}
    assert select_test_pipeline({"data": {"test": nested}}) == a
    assert select_test_pipeline({"test_pipeline": b}) == b
    with pytest.raises(ConfigError, match="neither data.test nor test_pipeline"):
        select_test_pipeline({})
