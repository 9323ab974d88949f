"""`ocrserve compose` archives served by a real server: MMOCR's DBNet + CRNN (the parity
fixtures of MMOCR 0.6.3 in ../shared) and a mix, the bundled PP-OCRv6 detector + MMOCR's CRNN.
The served lines equal the part predictors run one after the other in this process on the same
crops; a refused composition exits 2 with the reason."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.loader import load_predictor
from ocrserve.archives.mar import extract_archive, read_manifest
from ocrserve.compose.composer import compose_archive
from ocrserve.compose.end_to_end import lines_and_crops, text_and_score
from ocrserve.imaging import decode
from ocrserve.mmocr.archiver import archive_mmocr
from tests.conftest import SHARED, ServerProcess, running
from tests.integration.test_ppocr_archives import _ocrserve
from tests.prerequisites import needs_shared
from tests.unit.compose.test_end_to_end import quiet, text_page

FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
pytestmark = needs_shared("fixtures/mmocr-0.6.3")
PARTS = {
    "dbnet": ("textdet", "dbnet_r18_fpnc_1200e_icdar2015"),
    "crnn": ("textrecog", "crnn_academic_dataset"),
}


def _png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("composed")
    parts, store = tmp / "parts", tmp / "store"
    for name, (task, stem) in PARTS.items():
        folder = FIXTURES / task / stem
        archive_mmocr(folder / f"{stem}.py", folder / "checkpoint.pth", parts, name,
                      progress=quiet)  # fmt: skip
    build_bundled_archive("ppocr_det", parts)
    for name, det in (("dbnet_crnn", "dbnet"), ("ppdet_crnn", "ppocr_det")):
        res = _ocrserve("compose", "--det", str(parts / f"{det}.mar"), "--rec",
                        str(parts / "crnn.mar"), "--output-folder", str(store), "--model-name",
                        name, "--rec-batch", "4")  # fmt: skip
        assert res.returncode == 0, res.stderr
        assert Path(res.stdout.strip()) == store / f"{name}.mar"
    srv = ServerProcess(tmp, "--model-store", str(store), "--models", "all")
    for started in running(srv):
        yield started, tmp


def _parts_alone(mar: Path, tmp: Path, image: np.ndarray, threads: int) -> list[dict[str, Any]]:
    """The detector's predictor, then the recognizer's on each crop, in this process."""
    dest = tmp / f"alone-{mar.stem}"
    extract_archive(mar, dest)
    det = load_predictor(dest / "det", threads)
    rec = load_predictor(dest / "rec", threads)
    lines = []
    for quad, score, crop in lines_and_crops(image, det.predict([image])[0]["boundary_result"]):
        text, text_score = text_and_score(rec.predict([crop])[0])
        lines.append({"box": quad.reshape(-1).tolist(), "box_score": score, "text": text,
                      "text_score": text_score})  # fmt: skip
    return lines


def _check(srv: ServerProcess, tmp: Path, name: str, body: bytes) -> list[dict[str, Any]]:
    resp = httpx.put(f"{srv.url}/predictions/{name}", content=body, timeout=120)
    assert resp.status_code == 200, resp.text
    got = resp.json()["result"]
    describe = httpx.get(f"{srv.management_url}/models/{name}").json()[0]
    image = decode(body, 10**8, exif_orientation=True)
    alone = _parts_alone(tmp / "store" / f"{name}.mar", tmp, image, describe["cpuThreads"])
    assert [line["text"] for line in got] == [line["text"] for line in alone]
    for a, b in zip(got, alone):
        assert len(a["box"]) == 8
        np.testing.assert_allclose(a["box"], b["box"], atol=1e-3)
        assert a["box_score"] == pytest.approx(b["box_score"], abs=1e-5)
        assert a["text_score"] == pytest.approx(b["text_score"], abs=1e-5)
    return got


@pytest.mark.parametrize("image", ["det_640x640.png", "det_600x900.jpg", "det_1280x720.jpg"])
def test_dbnet_crnn_served_equals_the_parts_one_after_the_other(served, image: str) -> None:  # type: ignore[no-untyped-def]
    srv, tmp = served
    got = _check(srv, tmp, "dbnet_crnn", (FIXTURES / "images" / image).read_bytes())
    assert got, "the DBNet fixture finds lines on every fixture image"
    manifest = read_manifest(tmp / "store" / "dbnet_crnn.mar")
    assert manifest.ocrserve["parts"]["rec"]["kind"] == "mmocr"


def test_ppocr_detector_with_mmocr_recognizer_serves(served) -> None:  # type: ignore[no-untyped-def]
    srv, tmp = served
    image, _ = text_page(12)
    got = _check(srv, tmp, "ppdet_crnn", _png(image))
    assert len(got) >= 10
    tops = [min(line["box"][1::2]) for line in got]
    assert tops == sorted(tops)
    describe = httpx.get(f"{srv.management_url}/models/ppdet_crnn").json()[0]
    assert describe["weights"].startswith("det ppocr_det: PP-OCRv6_det")
    assert describe["weights"].endswith("; rec crnn: checkpoint.pth")


def test_cli_refuses_a_recognizer_as_detector_and_a_missing_file(served) -> None:  # type: ignore[no-untyped-def]
    _, tmp = served
    parts = tmp / "parts"
    res = _ocrserve("compose", "--det", str(parts / "crnn.mar"), "--rec", str(parts / "crnn.mar"),
                    "--output-folder", str(tmp / "bad"), "--model-name", "bad")  # fmt: skip
    assert res.returncode == 2
    assert "model crnn is text recognizer (textrecog); --det takes a text detector" in res.stderr
    res = _ocrserve("compose", "--det", str(parts / "dbnet.mar"), "--rec", str(parts / "nope.mar"),
                    "--output-folder", str(tmp / "bad"), "--model-name", "bad")  # fmt: skip
    assert res.returncode == 2 and "nope.mar: no such file; --rec takes" in res.stderr
    assert not (tmp / "bad").exists()


def test_mmocr_config_checkpoint_pairs_compose_like_their_archives(served) -> None:  # type: ignore[no-untyped-def]
    _, tmp = served
    pairs = {
        role: (FIXTURES / task / stem / f"{stem}.py", FIXTURES / task / stem / "checkpoint.pth")
        for role, (task, stem) in zip(("det", "rec"), PARTS.values())
    }
    out = compose_archive(tmp / "pairs", det=pairs["det"], rec=pairs["rec"], model_name="pairs",
                          rec_batch=4, progress=quiet)  # fmt: skip
    parts = read_manifest(out).ocrserve["parts"]
    assert parts["det"]["model"] == "dbnet_r18_fpnc_1200e_icdar2015"
    image = decode((FIXTURES / "images" / "det_640x640.png").read_bytes(), 10**8)
    loaded = []
    for mar in (out, tmp / "store" / "dbnet_crnn.mar"):
        extract_archive(mar, tmp / f"x-{mar.stem}")
        loaded.append(load_predictor(tmp / f"x-{mar.stem}", 1).predict([image]))
    assert loaded[0] == loaded[1]


def test_fcenet_polygons_are_cut_by_their_min_area_rectangle(served) -> None:  # type: ignore[no-untyped-def]
    import cv2

    _, tmp = served
    stem = "fcenet_r50_fpn_1500e_icdar2015"
    folder = FIXTURES / "textdet" / stem
    out = compose_archive(tmp / "fcenet", det=(folder / f"{stem}.py", folder / "checkpoint.pth"),
                          rec=tmp / "parts" / "crnn.mar", model_name="fcenet_crnn",
                          progress=quiet)  # fmt: skip
    extract_archive(out, tmp / "x-fcenet")
    composed = load_predictor(tmp / "x-fcenet", 1)
    image = decode((FIXTURES / "images" / "det_640x640.png").read_bytes(), 10**8)
    polygons = composed.detector.predict([image])[0]["boundary_result"]
    assert polygons and all(len(p) > 9 for p in polygons)  # FCENet: 50-vertex polygons
    got = composed.predict([image])[0]["result"]
    assert len(got) == len(polygons)

    def corners(points: Any) -> list[tuple[float, float]]:
        return sorted((round(float(x), 2), round(float(y), 2)) for x, y in points)

    boxes = sorted(corners(np.reshape(line["box"], (4, 2))) for line in got)
    rects = sorted(
        corners(cv2.boxPoints(cv2.minAreaRect(np.float32(p[:-1]).reshape(-1, 2)))) for p in polygons
    )
    np.testing.assert_allclose(boxes, rects, atol=0.02)


def test_options_reach_mmocr_parts(served) -> None:  # type: ignore[no-untyped-def]
    """Request options on a composed MMOCR DBNet + CRNN: the detector's (box threshold,
    max_side) and the recognizer's (char_scores) reach the parts; detect_only skips CRNN."""
    srv, _ = served
    body = (FIXTURES / "images" / "det_1280x720.jpg").read_bytes()

    def put(**params: Any) -> list[dict[str, Any]]:
        resp = httpx.put(f"{srv.url}/predictions/dbnet_crnn", params=params, content=body,
                         timeout=120)  # fmt: skip
        assert resp.status_code == 200, resp.text
        return list(resp.json()["result"])

    default = put()
    with_chars = put(char_scores="true")
    assert [line["text"] for line in with_chars] == [line["text"] for line in default]
    for line in with_chars:
        assert len(line["char_scores"]) == len(line["text"])
        mean = sum(line["char_scores"]) / max(1, len(line["text"]))
        assert mean == pytest.approx(line["text_score"], abs=1e-6)
    boxes = put(detect_only="true")
    assert [(b["box"], b["box_score"]) for b in boxes] == [
        (line["box"], line["box_score"]) for line in default
    ]
    scores = sorted(line["box_score"] for line in default)
    distinct = sorted(set(scores))
    assert len(distinct) > 1
    cut = (distinct[len(distinct) // 2 - 1] + distinct[len(distinct) // 2]) / 2  # between two
    kept = put(detect_only="true", box_score_threshold=cut)
    assert sorted(b["box_score"] for b in kept) == [s for s in scores if s >= cut]
    # (The slim DBNet's boxes are noise, so only that max_side reaches it is checked here; the
    # geometry is in tests/unit/mmocr/test_mmocr_predictor.py.)
    small = put(detect_only="true", max_side=320)
    assert small != boxes
    assert all(-2 <= x <= 1282 for b in small for x in b["box"][0::2])


def test_archive_det_rec_with_mixed_parts_composes(served) -> None:  # type: ignore[no-untyped-def]
    """``ocrserve archive --det DET.onnx --rec CONFIG CHECKPOINT``: one end-to-end archive from
    a PaddleOCR ONNX file and an MMOCR pair, answering as the same parts composed from their
    archives (``ppdet_crnn``); ``--option`` pins an option in it."""
    from ocrserve.ppocr.weights import weights_path

    _, tmp = served
    task, stem = PARTS["crnn"]
    folder = FIXTURES / task / stem
    res = _ocrserve("archive", "--det", str(weights_path("det")), "--rec",
                    str(folder / f"{stem}.py"), str(folder / "checkpoint.pth"),
                    "--output-folder", str(tmp / "mixed"), "--model-name", "mixed",
                    "--option", "drop_score=0.25")  # fmt: skip
    assert res.returncode == 0, res.stderr
    out = Path(res.stdout.strip())
    assert out == tmp / "mixed" / "mixed.mar"
    section = read_manifest(out).ocrserve
    assert section["parts"]["det"]["kind"] == "ppocr" and section["parts"]["rec"]["kind"] == "mmocr"
    assert section["options"] == {"drop_score": 0.25}
    image, _ = text_page(6)
    answers = []
    for mar in (out, tmp / "store" / "ppdet_crnn.mar"):
        extract_archive(mar, tmp / f"y-{mar.stem}")
        answers.append(load_predictor(tmp / f"y-{mar.stem}", 1).predict([image], {"drop_score": 0}))
    assert answers[0] == answers[1] and answers[0][0]["result"]
    res = _ocrserve("archive", "--det", str(weights_path("det")), "--rec",
                    str(folder / f"{stem}.py"), str(folder / "checkpoint.pth"),
                    "--output-folder", str(tmp / "mixed2"))  # fmt: skip
    assert res.returncode == 2 and "--model-name NAME" in res.stderr
