"""Recognition pipeline pieces: ResizeOCR widths, padding, valid_ratio; MultiRotateAugOCR."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines import build_pipeline, to_samples

CRNN_TEST_PIPELINE: list[dict[str, Any]] = [
    {"type": "LoadImageFromFile", "color_type": "grayscale"},
    {
        "type": "ResizeOCR",
        "height": 32,
        "min_width": 32,
        "max_width": None,
        "keep_aspect_ratio": True,
    },
    {"type": "Normalize", "mean": [127], "std": [127]},
    {"type": "DefaultFormatBundle"},
    {
        "type": "Collect",
        "keys": ["img"],
        "meta_keys": [
            "filename",
            "resize_shape",
            "valid_ratio",
            "img_norm_cfg",
            "ori_filename",
            "img_shape",
            "ori_shape",
        ],
    },
]


@pytest.mark.parametrize(
    "h, w, width",
    # ceil(32 / h * w), rounded (Python round) to a multiple of 16, at least 32
    [(32, 100, 96), (48, 160, 112), (32, 64, 64), (100, 32, 32), (32, 120, 128), (32, 40, 32)],
)
def test_resize_ocr_widths(h: int, w: int, width: int) -> None:
    img = np.full((h, w, 3), 127, np.uint8)
    (sample,) = to_samples(build_pipeline(CRNN_TEST_PIPELINE)({"img": img}))
    assert sample.img.shape == (1, 32, width)
    assert sample.meta["resize_shape"] == (32, width) and sample.meta["img_shape"] == (32, width)
    assert sample.meta["ori_shape"] == (h, w, 1) and sample.meta["valid_ratio"] == 1.0
    assert np.allclose(sample.img, 0.0)


def test_resize_ocr_max_width_pads_and_sets_valid_ratio() -> None:
    resize = build_pipeline(
        [{"type": "ResizeOCR", "height": 32, "min_width": 32, "max_width": 160, "img_pad_value": 9}]
    )
    short = resize({"img": np.ones((32, 64, 3), np.uint8), "img_shape": (32, 64, 3)})
    assert short["img"].shape == (32, 160, 3) and short["resize_shape"] == (32, 64, 3)
    assert short["pad_shape"] == (32, 160, 3) and short["valid_ratio"] == 0.4
    assert short["img"][0, 100, 0] == 9 and short["img"][0, 100, 1] == 0  # cv2: first channel
    long = resize({"img": np.ones((32, 400, 3), np.uint8), "img_shape": (32, 400, 3)})
    assert long["img"].shape == (32, 160, 3) and long["valid_ratio"] == 1.0


def test_resize_ocr_stretch_and_errors() -> None:
    stretch = build_pipeline(
        [
            {
                "type": "ResizeOCR",
                "height": 32,
                "min_width": 100,
                "max_width": 100,
                "keep_aspect_ratio": False,
            }
        ]
    )
    out = stretch({"img": np.ones((10, 10), np.uint8), "img_shape": (10, 10)})
    assert out["img"].shape == (32, 100)
    with pytest.raises(ConfigError, match="max_width"):
        build_pipeline([{"type": "ResizeOCR", "height": 32, "keep_aspect_ratio": False}])
    with pytest.raises(ConfigError, match="backend"):
        build_pipeline([{"type": "ResizeOCR", "height": 32, "backend": "pillow"}])
    multi = build_pipeline(
        [{"type": "ResizeOCR", "height": [32, 64], "min_width": [32, 64], "max_width": [100, 200]}]
    )
    out = multi({"img": np.ones((32, 32), np.uint8), "img_shape": (32, 32)})
    assert out["img"].shape == (32, 100) and out["valid_ratio"] == 0.32  # rank 0: first values


def _rotate_pipeline() -> list[dict[str, Any]]:
    return [
        {"type": "LoadImageFromNdarray", "color_type": "color"},
        {
            "type": "MultiRotateAugOCR",
            "rotate_degrees": [0, 90, 270],
            "transforms": [
                {"type": "ResizeOCR", "height": 32, "min_width": 32, "max_width": 160},
                {"type": "Normalize", "mean": [127, 127, 127], "std": [127, 127, 127]},
                {"type": "DefaultFormatBundle"},
                {
                    "type": "Collect",
                    "keys": ["img"],
                    "meta_keys": ["ori_shape", "img_shape", "resize_shape", "valid_ratio"],
                },
            ],
        },
    ]


def test_multi_rotate_only_for_tall_crops() -> None:
    pipeline = build_pipeline(_rotate_pipeline())
    wide = to_samples(pipeline({"img": np.zeros((32, 100, 3), np.uint8)}))
    assert len(wide) == 1
    tall_img = np.zeros((100, 32, 3), np.uint8)
    tall_img[:10] = 255  # the top rows, to see where each rotation puts them
    tall = to_samples(pipeline({"img": tall_img}))
    assert len(tall) == 3
    # MMOCR sizes every variant by the unrotated shape (width 32 here).
    assert all(s.img.shape == (3, 32, 160) for s in tall)
    assert [s.meta["resize_shape"] for s in tall] == [(32, 32, 3)] * 3


def test_multi_rotate_degrees_are_checked() -> None:
    cfg = _rotate_pipeline()
    cfg[1]["rotate_degrees"] = [45]
    with pytest.raises(ConfigError, match="multiples of 90"):
        build_pipeline(cfg)


def test_multi_scale_flip_aug_scales() -> None:
    pipeline = build_pipeline(
        [
            {
                "type": "MultiScaleFlipAug",
                "img_scale": [[64, 32], [128, 64]],
                "transforms": [
                    {"type": "Resize", "keep_ratio": True},
                    {"type": "DefaultFormatBundle"},
                    {
                        "type": "Collect",
                        "keys": ["img"],
                        "meta_keys": ["img_shape", "scale_factor"],
                    },
                ],
            }
        ]
    )
    samples = to_samples(pipeline({"img": np.zeros((10, 20, 3), np.uint8)}))
    assert [s.meta["img_shape"] for s in samples] == [(32, 64, 3), (64, 128, 3)]
    with pytest.raises(ConfigError, match="exactly one of img_scale and scale_factor"):
        build_pipeline([{"type": "MultiScaleFlipAug", "transforms": []}])
    by_factor = build_pipeline(
        [
            {
                "type": "MultiScaleFlipAug",
                "scale_factor": 0.5,
                "transforms": [
                    {"type": "Resize", "keep_ratio": True},
                    {"type": "Collect", "keys": ["img"], "meta_keys": ["img_shape"]},
                ],
            }
        ]
    )
    assert by_factor({"img": np.zeros((10, 20, 3), np.uint8)})["img_metas"][0]["img_shape"] == (
        5,
        10,
        3,
    )


def test_to_tensor_and_normalize_ocr_keep_bgr_and_use_float32() -> None:
    from ocrserve.mmocr.pipelines.ocr_transforms import NormalizeOCR, ToTensorOCR

    img = np.zeros((2, 3, 3), dtype=np.uint8)
    img[..., 0] = 255  # blue, first channel as loaded
    out = NormalizeOCR([0.5, 0.5, 0.5], [0.25, 0.5, 0.5])(ToTensorOCR()({"img": img}))
    assert out["img"].shape == (3, 2, 3) and out["img"].dtype == np.float32
    assert out["img"][0].max() == 2.0 and out["img"][1].max() == -1.0
    assert out["img_norm_cfg"] == {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.5, 0.5]}
