"""The installed dependencies carry no GUI OpenCV, and the bundled PP-OCRv6 models serve on them."""

from __future__ import annotations

import importlib.metadata as md
import json
import re

import httpx
import pytest

from tests.conftest import DEMO, ServerProcess

#: OpenCV wheels that need display libraries (libGL.so.1); only the headless build may be here.
GUI_OPENCV = ("opencv-python", "opencv-contrib-python")


def _requirement_names(dist: str) -> set[str]:
    names = set()
    for req in md.requires(dist) or []:
        if "extra ==" in req:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", req)
        assert match is not None
        names.add(match.group(0).lower().replace("_", "-"))
    return names


def test_only_headless_opencv_is_installed() -> None:
    assert md.version("opencv-python-headless") == "4.10.0.84"
    for name in GUI_OPENCV:
        with pytest.raises(md.PackageNotFoundError):
            md.distribution(name)
    with pytest.raises(md.PackageNotFoundError):  # the old weights wheel pulled opencv-python
        md.distribution("rapidocr-onnxruntime")


def test_no_dependency_asks_for_gui_opencv() -> None:
    assert md.version("rapidocr") == "3.10.0"
    assert "opencv-python-headless" in _requirement_names("rapidocr")
    for dist in ("ocrserve", "rapidocr"):
        assert not set(GUI_OPENCV) & _requirement_names(dist), dist


def test_bundled_models_serve_and_describe_their_weights(
    server: ServerProcess, client: httpx.Client
) -> None:
    resp = client.put("/predictions/ocr", content=(DEMO / "demo_text_det.jpg").read_bytes())
    assert resp.status_code == 200, resp.text
    lines = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
    assert [r["text"] for r in resp.json()["result"]] == [line["text"] for line in lines]
    weights = {
        name: httpx.get(f"{server.management_url}/models/{name}").json()[0]["weights"]
        for name in ("ppocr_det", "ppocr_rec", "ocr")
    }
    assert weights == {
        "ppocr_det": "PP-OCRv6_det_small from rapidocr==3.10.0 (Apache-2.0)",
        "ppocr_rec": "PP-OCRv6_rec_small from rapidocr==3.10.0 (Apache-2.0)",
        "ocr": "PP-OCRv6_det_small + ch_ppocr_mobile_v2.0_cls + PP-OCRv6_rec_small "
        "from rapidocr==3.10.0 (Apache-2.0)",
    }
