"""The serving path (`MMOCRPredictor(lean=True)`: unread outputs dropped, channels-last where a
detector allows it) still gives MMOCR 0.6.3's results on every detection fixture."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from ocrserve.compare.matching import Tolerances, compare_results
from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor
from tests.mask_rcnn_matching import boundary_mismatch
from tests.prerequisites import SHARED, needs_shared

TEXTDET = SHARED / "fixtures" / "mmocr-0.6.3" / "textdet"
#: Mask R-CNN's slim fixtures have many detections whose scores tie to 1e-7, which NMS may
#: resolve the other way: they are held to tests/parity/test_mmocr_parity_mask_rcnn.py's rule.
TIE_AWARE = ("mask_rcnn_",)
#: Every detector fixture (DRRG's and Mask R-CNN's included since issue 36).
MODELS = sorted(p.parent.name for p in TEXTDET.glob("*/checkpoint.pth"))

pytestmark = needs_shared("fixtures/mmocr-0.6.3/textdet", "fixtures/mmocr-0.6.3/images")


@pytest.mark.parametrize("model", MODELS)
def test_lean_predictor_gives_mmocr_boundaries(model: str) -> None:
    folder = TEXTDET / model
    predictor = MMOCRPredictor.from_files(
        folder / f"{model}.py", folder / "checkpoint.pth", lean=True
    )
    results = sorted((folder / "base").glob("*.result.json"))
    assert results
    for result_file in results:
        name = result_file.name.removesuffix(".result.json")
        (path,) = (SHARED / "fixtures" / "mmocr-0.6.3" / "images").glob(f"{name}.*")
        image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
        expected = json.loads(result_file.read_text())
        if model.startswith(TIE_AWARE):
            got = predictor.predict([image])[0]["boundary_result"]
            why = boundary_mismatch(got, expected["boundary_result"])
            assert why is None, f"{name}: {why}"
            continue
        comparison = compare_results(
            path.name, "textdet", expected, predictor.predict([image])[0], Tolerances()
        )
        assert comparison.ok, comparison.reasons()
