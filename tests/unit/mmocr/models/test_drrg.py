"""DRRG: the head's padded test output, the local graphs it builds, and DRRGPostprocessor."""

from __future__ import annotations

import numpy as np
import torch

from ocrserve.mmocr.models import build_model
from ocrserve.mmocr.models.detectors.drrg import DRRG
from ocrserve.mmocr.models.heads.drrg_head import DRRGHead
from ocrserve.mmocr.pipelines.postprocess import build_postprocessor


def drrg_config() -> dict[str, object]:
    return {
        "type": "DRRG",
        "backbone": {"type": "mmdet.ResNet", "depth": 50, "base_channels": 4, "style": "caffe"},
        "neck": {"type": "FPN_UNet", "in_channels": [16, 32, 64, 128], "out_channels": 8},
        "bbox_head": {
            "type": "DRRGHead",
            "in_channels": 8,
            "text_region_thr": 0.3,
            "center_region_thr": 0.4,
            "loss": {"type": "DRRGLoss"},
            "postprocessor": {"type": "DRRGPostprocessor", "link_thr": 0.8},
        },
    }


def _text_everywhere(model: DRRG) -> None:
    """Constant maps: text and centre everywhere, horizontal, 4 px up and down."""
    head = model.bbox_head
    assert isinstance(head, DRRGHead)
    with torch.no_grad():
        head.out_conv.weight.zero_()
        head.out_conv.bias.copy_(torch.tensor([10.0, 10.0, 0.0, 1.0, 4.0, 4.0]))


def test_drrg_names_and_settings_are_mmocrs() -> None:
    model = build_model(drrg_config())
    assert isinstance(model, DRRG) and not model.result_has_filename
    keys = set(model.state_dict())
    assert {"bbox_head.out_conv.weight", "bbox_head.gcn.bn0.running_var"} <= keys
    assert {"bbox_head.gcn.conv4.weight", "bbox_head.gcn.classifier.1.weight"} <= keys
    # 4 x 3 bins of the 8 neck channels and 6 maps, and the 120-long geometric embedding
    assert model.state_dict()["bbox_head.gcn.bn0.running_mean"].shape == (12 * 14 + 120,)
    assert model.postprocessor_config() == {"type": "DRRGPostprocessor", "link_thr": 0.8}


def test_forward_pads_each_images_edges_and_components() -> None:
    torch.manual_seed(0)
    model = build_model(drrg_config())
    assert isinstance(model, DRRG)
    _text_everywhere(model)
    with torch.inference_mode():
        edges, scores, comps = model(torch.rand(2, 3, 64, 64))
    assert edges.shape[0] == scores.shape[0] == comps.shape[0] == 2
    assert comps.shape[1] >= 2, "the constant maps give components"
    for i in range(2):
        valid = (edges[i] >= 0).all(dim=1)
        assert int(valid.sum()) == int((~scores[i].isnan()).sum()) > 0
        n = int((~comps[i].isnan().any(dim=1)).sum())
        assert int(edges[i][valid].max()) < n
    # every component is a pivot with min(8, n - 1) neighbours
    n = int((~comps[0].isnan().any(dim=1)).sum())
    assert int((edges[0] >= 0).all(dim=1).sum()) == n * min(8, n - 1)


def test_no_text_gives_empty_padded_outputs() -> None:
    model = build_model(drrg_config())
    head = model.bbox_head
    assert isinstance(head, DRRGHead)
    with torch.no_grad():
        head.out_conv.weight.zero_()
        head.out_conv.bias.fill_(-10.0)
    with torch.inference_mode():
        edges, scores, comps = model(torch.rand(1, 3, 64, 64))
    assert edges.shape == (1, 0, 2) and scores.shape == (1, 0) and comps.shape == (1, 0, 9)
    post = build_postprocessor({"type": "DRRGPostprocessor", "link_thr": 0.8})
    assert post([edges[0].numpy(), scores[0].numpy(), comps[0].numpy()]) == []


def _box(x: float, score: float) -> list[float]:
    return [x, 10.0, x + 8, 10.0, x + 8, 30.0, x, 30.0, score]


def test_postprocessor_links_clusters_and_drops_lone_components() -> None:
    comps = np.array([_box(0, 0.9), _box(8, 0.7), _box(16, 0.5), _box(24, 0.3), [np.nan] * 9])
    edges = np.array([[0, 1], [2, 1], [2, 3], [3, 2], [-1, -1]])
    # (2, 3) is averaged over its two directions: 0.5 * (0.9 + 0.6) = 0.75 < 0.8
    scores = np.array([0.95, 0.85, 0.9, 0.6, np.nan])
    post = build_postprocessor({"type": "DRRGPostprocessor", "link_thr": 0.8})
    (boundary,) = post([edges, scores, comps])
    assert boundary[-1] == np.mean([0.9, 0.7, 0.5])
    xs, ys = boundary[0:-1:2], boundary[1:-1:2]
    assert min(xs) == 0 and max(xs) == 24 and min(ys) == 10 and max(ys) == 30


def test_postprocessor_ignores_edges_over_50_px() -> None:
    comps = np.array([_box(0, 0.9), _box(100, 0.7)])
    post = build_postprocessor({"type": "DRRGPostprocessor", "link_thr": 0.8})
    assert post([np.array([[0, 1]]), np.array([0.99]), comps]) == []
