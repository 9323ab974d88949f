"""FCENet: mmdet FPN neck, FCEHead and FCEPostprocessor (Fourier decoding, polygon NMS)."""

from __future__ import annotations

import numpy as np
import torch

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors import SingleStageTextDetector
from ocrserve.mmocr.pipelines.postprocess import build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.fce import fill_hole, fourier2poly, poly_nms


def fcenet_config() -> dict[str, object]:
    return {
        "type": "FCENet",
        "backbone": {
            "type": "mmdet.ResNet",
            "depth": 50,
            "base_channels": 4,
            "out_indices": (1, 2, 3),
            "style": "pytorch",
        },
        "neck": {
            "type": "mmdet.FPN",
            "in_channels": [32, 64, 128],
            "out_channels": 8,
            "add_extra_convs": "on_output",
            "num_outs": 3,
            "relu_before_extra_convs": True,
            "act_cfg": None,
        },
        "bbox_head": {
            "type": "FCEHead",
            "in_channels": 8,
            "scales": (8, 16, 32),
            "fourier_degree": 5,
            "postprocessor": {"type": "FCEPostprocessor", "text_repr_type": "quad", "alpha": 1.2},
        },
    }


def test_fcenet_levels_names_and_postprocessor_config() -> None:
    model = build_model(fcenet_config())
    assert isinstance(model, SingleStageTextDetector) and not model.result_has_filename
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 128, 64))
    assert [(c.shape, r.shape) for c, r in out] == [
        ((1, 4, 16, 8), (1, 22, 16, 8)),
        ((1, 4, 8, 4), (1, 22, 8, 4)),
        ((1, 4, 4, 2), (1, 22, 4, 2)),
    ]
    keys = set(model.state_dict())
    assert {"neck.lateral_convs.2.conv.bias", "neck.fpn_convs.0.conv.weight"} <= keys
    cfg = model.postprocessor_config()
    assert cfg["fourier_degree"] == 5 and cfg["nms_thr"] == 0.1 and cfg["scales"] == [8, 16, 32]
    assert cfg["alpha"] == 1.2 and cfg["text_repr_type"] == "quad"


def test_fpn_extra_levels() -> None:
    cfg = fcenet_config()
    cfg["neck"] = {**cfg["neck"], "num_outs": 5}  # type: ignore[dict-item]
    model = build_model(cfg)
    with torch.inference_mode():
        feats = model.neck(model.backbone(torch.rand(1, 3, 128, 128)))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]


def test_fourier2poly_of_a_circle() -> None:
    coeff = np.zeros((1, 11), complex)
    coeff[0, 5] = 100 + 50j  # centre
    coeff[0, 6] = 20  # radius 20, degree 1
    poly = fourier2poly(coeff, 50).reshape(-1, 2)
    radius = np.hypot(poly[:, 0] - 100, poly[:, 1] - 50)
    assert poly.shape == (50, 2) and np.all(np.abs(radius - 20) <= 1.5)


def test_poly_nms_keeps_the_best_of_overlapping_polygons() -> None:
    square = [0, 0, 10, 0, 10, 10, 0, 10]
    shifted = [1, 1, 11, 1, 11, 11, 1, 11]
    far = [50, 50, 60, 50, 60, 60, 50, 60]
    kept = poly_nms([square + [0.5], shifted + [0.9], far + [0.1]], 0.1)
    assert [k[-1] for k in kept] == [0.9, 0.1]


def test_fill_hole() -> None:
    ring = np.zeros((7, 7), bool)
    ring[1:6, 1:6] = True
    ring[3, 3] = False
    assert fill_hole(ring)[3, 3] and not fill_hole(ring)[0, 0]


def test_fce_postprocessor_returns_polygons_even_for_quad() -> None:
    cls = np.full((4, 20, 20), -5.0, np.float32)
    cls[1, 8:12, 8:12] = 5.0  # text region
    cls[3, 8:12, 8:12] = 5.0  # centre line
    reg = np.zeros((22, 20, 20), np.float32)
    reg[6] = 10.0  # radius 10 (x 8 = 80 px) around each pixel: all overlap
    empty = (np.full((4, 10, 10), -5.0, np.float32), np.zeros((22, 10, 10), np.float32))
    post = build_postprocessor(
        {
            "type": "FCEPostprocessor",
            "text_repr_type": "quad",
            "fourier_degree": 5,
            "num_reconstr_points": 50,
            "scales": [8, 16],
            "alpha": 1.0,
            "beta": 1.0,
        }
    )
    boundaries = post([(cls, reg), empty])
    assert len(boundaries) == 1 and len(boundaries[0]) == 101
