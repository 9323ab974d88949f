"""PaddleOCR ONNX models -> archives: tiny networks made here, the bundled v6 files, refusals."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ocrserve.archives.loader import load_predictor
from ocrserve.archives.mar import MANIFEST_PATH, extract_archive, read_manifest
from ocrserve.errors import ArchiveError
from ocrserve.imaging import decode
from ocrserve.ppocr import DEFAULT_CONFIG, PADDLEOCR_CONFIG, build_builtin
from ocrserve.ppocr.paddle_archiver import archive_paddle, check_onnx
from ocrserve.ppocr.weights import weights_path
from tests.conftest import DEMO
from tests.tiny_ppocr import tiny_cls, tiny_det, tiny_rec

DICTIONARY = list("abcdefghij")  # 10 characters: 12 classes with the blank and the space


def quiet(message: str) -> None:
    """No progress lines in the test output."""


@pytest.fixture(scope="module")
def nets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("nets")
    (tmp / "dict.txt").write_text("\n".join(DICTIONARY) + "\n", encoding="utf-8")
    return {
        "det": tiny_det(tmp / "det.onnx"),
        "rec": tiny_rec(tmp / "rec.onnx", len(DICTIONARY) + 2, DICTIONARY),
        "rec_nodict": tiny_rec(tmp / "rec_nodict.onnx", len(DICTIONARY) + 2),
        "cls": tiny_cls(tmp / "cls.onnx"),
        "dict": tmp / "dict.txt",
    }


def page() -> np.ndarray:
    """A light page with one dark bar where a text line would be."""
    img = np.full((200, 320, 3), 230, np.uint8)
    img[80:110, 40:260] = 20
    return img


def _load(mar: Path, tmp: Path):  # type: ignore[no-untyped-def]
    dest = tmp / mar.stem
    extract_archive(mar, dest)
    return load_predictor(dest, threads=1)


def test_tiny_networks_make_three_archives_that_run(nets: dict[str, Path], tmp_path: Path) -> None:
    outs = archive_paddle(
        tmp_path, det=nets["det"], rec=nets["rec"], cls=nets["cls"], model_name="tiny",
        progress=quiet,
    )  # fmt: skip
    assert [p.name for p in outs] == ["tiny_det.mar", "tiny_rec.mar", "tiny.mar"]
    tasks = {p.stem: read_manifest(p).ocrserve for p in outs}
    assert {k: v["task"] for k, v in tasks.items()} == {
        "tiny_det": "textdet",
        "tiny_rec": "textrecog",
        "tiny": "e2e",
    }
    assert tasks["tiny"]["files"] == {"det": "det.onnx", "rec": "rec.onnx", "cls": "cls.onnx"}
    assert tasks["tiny_det"]["weights"].startswith("det det.onnx (sha256 ")
    # The settings travel in the archive's config.json (the v6 preset by default).
    with zipfile.ZipFile(outs[2]) as zf:
        assert json.loads(zf.read("config.json")) == DEFAULT_CONFIG
    (boxes,) = _load(outs[0], tmp_path).predict([page()])
    ((*quad, score),) = boxes["boundary_result"]
    xs, ys = quad[0::2], quad[1::2]
    assert min(xs) <= 40 and max(xs) >= 259 and min(ys) <= 80 and max(ys) >= 109 and score > 0.9
    (rec,) = _load(outs[1], tmp_path).predict([page()[70:120, 30:270]])
    assert set(rec["text"]) <= set(DICTIONARY) | {" "} and 0 < rec["score"] <= 1
    (e2e,) = _load(outs[2], tmp_path).predict([page()])
    assert e2e["result"] == [] or len(e2e["result"]) == 1  # the line, unless its score < 0.5


def test_dictionary_file_is_stored_and_used(nets: dict[str, Path], tmp_path: Path) -> None:
    (out,) = archive_paddle(
        tmp_path, rec=nets["rec_nodict"], dict_file=nets["dict"], model_name="d", progress=quiet
    )
    section = read_manifest(out).ocrserve
    assert section["files"] == {"rec": "rec.onnx", "dict": "rec_dict.txt"}
    predictor = _load(out, tmp_path)
    assert predictor.charset == ["<blank>", *DICTIONARY, " "]  # type: ignore[attr-defined]


def test_v4_settings_and_overrides(nets: dict[str, Path], tmp_path: Path) -> None:
    (out,) = archive_paddle(
        tmp_path, det=nets["det"], settings="v4", config={"det": {"unclip_ratio": 2.0}},
        model_name="v4", progress=quiet,
    )  # fmt: skip
    with zipfile.ZipFile(out) as zf:
        det = json.loads(zf.read("config.json"))["det"]
    assert det == {**PADDLEOCR_CONFIG["det"], "unclip_ratio": 2.0}
    with pytest.raises(ArchiveError, match="unexpected keyword argument 'unclip'"):
        archive_paddle(
            tmp_path, det=nets["det"], config={"det": {"unclip": 2.0}}, force=True, progress=quiet
        )


def test_bundled_v6_files_archive_and_read_the_demo(tmp_path: Path) -> None:
    outs = archive_paddle(
        tmp_path, det=weights_path("det"), rec=weights_path("rec"), cls=weights_path("cls"),
        model_name="v6", progress=quiet,
    )  # fmt: skip
    image = decode((DEMO / "demo_text_det.jpg").read_bytes(), 10**8)
    ours = _load(outs[2], tmp_path).predict([image])
    assert ours == build_builtin("ocr", 1).predict([image])
    lines = json.loads((DEMO / "demo_text_det.json").read_text())["lines"]
    assert [r["text"] for r in ours[0]["result"]] == [line["text"] for line in lines]
    assert "PP-OCRv6_rec_small.onnx (sha256 " in read_manifest(outs[2]).ocrserve["weights"]


# ----------------------------------------------------------------------------- refusals


def test_refuses_a_file_that_is_not_onnx(tmp_path: Path) -> None:
    bad = tmp_path / "det.onnx"
    bad.write_text("not a model")
    with pytest.raises(ArchiveError, match=r"detector det.onnx is not a usable ONNX model"):
        archive_paddle(tmp_path / "out", det=bad, progress=quiet)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("role", "make", "reason"),
    [
        ("det", lambda p: tiny_det(p, channels=1), r"input shape \? x 1 x \? x \?"),
        ("rec", lambda p: tiny_rec(p, 12, DICTIONARY, height=32), "48-pixel-high|N x 3 x 48 x W"),
        ("det", lambda p: tiny_det(p, out_channels=2), r"answers 1 x 2 x 64 x 96"),
        ("cls", lambda p: tiny_det(p), r"angle classifier .* answers 1 x 1 x 48 x 192"),
        ("rec", lambda p: tiny_cls(p), r"input shape \? x 3 x 48 x 192"),
    ],
)
def test_refuses_the_wrong_shapes_with_the_reason(
    tmp_path: Path,
    role: str,
    make,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    path = make(tmp_path / f"{role}.onnx")
    with pytest.raises(ArchiveError, match=reason):
        check_onnx(path, role)


def test_refuses_a_dictionary_that_does_not_fit(nets: dict[str, Path], tmp_path: Path) -> None:
    wrong = tiny_rec(tmp_path / "rec.onnx", 20, DICTIONARY)
    with pytest.raises(ArchiveError) as err:
        archive_paddle(tmp_path / "out", rec=wrong, progress=quiet)
    assert "dictionary from the ONNX metadata does not fit recognizer rec.onnx" in err.value.message
    assert "10 characters (+ the CTC blank + a space = 12 classes)" in err.value.message
    assert "predicts 20 classes" in err.value.message
    short = tmp_path / "short.txt"
    short.write_text("a\nb\n")
    with pytest.raises(ArchiveError, match=r"dictionary from short.txt does not fit .* 2 char"):
        archive_paddle(tmp_path / "out", rec=nets["rec"], dict_file=short, progress=quiet)
    with pytest.raises(ArchiveError, match="no 'character' metadata: give its dictionary"):
        archive_paddle(tmp_path / "out", rec=nets["rec_nodict"], progress=quiet)
    assert not (tmp_path / "out").exists()


def test_refuses_incomplete_sets_and_existing_files(nets: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="--cls is used end to end only"):
        archive_paddle(tmp_path, det=nets["det"], cls=nets["cls"], progress=quiet)
    with pytest.raises(ArchiveError, match="need --det, --rec or both"):
        archive_paddle(tmp_path, progress=quiet)
    archive_paddle(tmp_path, det=nets["det"], progress=quiet)
    with pytest.raises(ArchiveError, match="already exists; use --force"):
        archive_paddle(tmp_path, det=nets["det"], progress=quiet)
    with zipfile.ZipFile(tmp_path / "ppocr_det.mar") as zf:
        assert MANIFEST_PATH in zf.namelist()
