"""Post-processing: DBPostprocessor on synthetic maps, rescaling, CTC decoding, dictionaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from ocrserve.errors import ConfigError
from ocrserve.mmocr.pipelines.postprocess import build_convertor, build_postprocessor
from ocrserve.mmocr.pipelines.postprocess.ctc import CTCConvertor
from ocrserve.mmocr.pipelines.postprocess.db import box_score_fast, rescale_boundaries, unclip
from ocrserve.mmocr.pipelines.postprocess.dictionaries import DICT36, DICT90, load_dictionary


def _maps(*boxes: tuple[int, int, int, int, float], size: tuple[int, int] = (64, 96)) -> np.ndarray:
    maps = np.zeros((3, *size), np.float32)
    for x0, y0, x1, y1, p in boxes:
        maps[0, y0:y1, x0:x1] = p
    return maps


def test_db_quad_on_a_rectangle() -> None:
    post = build_postprocessor({"type": "DBPostprocessor", "text_repr_type": "quad"})
    (boundary,) = post(_maps((20, 10, 60, 30, 0.9)))
    assert len(boundary) == 9 and abs(boundary[-1] - 0.9) < 1e-6
    xs, ys = boundary[0:8:2], boundary[1:8:2]
    # the region (x 20..59, y 10..29) expanded by area * 1.5 / perimeter, about 9 px
    assert 9 < 20 - min(xs) < 12 and 9 < max(xs) - 59 < 12
    assert 9 < 10 - min(ys) < 12 and 9 < max(ys) - 29 < 12


def test_db_poly_thresholds_and_min_width() -> None:
    poly = build_postprocessor({"type": "DBPostprocessor", "text_repr_type": "poly", "any": 1})
    (boundary,) = poly(_maps((20, 10, 60, 30, 0.9)))
    assert len(boundary) % 2 == 1 and len(boundary) >= 9
    assert all(isinstance(v, int) for v in boundary[:-1])  # pyclipper's integer points
    faint = build_postprocessor({"type": "DBPostprocessor", "min_text_score": 0.95})
    assert faint(_maps((20, 10, 60, 30, 0.9))) == []
    below_mask = build_postprocessor({"type": "DBPostprocessor", "mask_thr": 0.9})
    assert below_mask(_maps((20, 10, 60, 30, 0.9))) == []
    # a 4-pixel-high line expands to a rectangle about 7 px high: kept only above min width
    wide = build_postprocessor({"type": "DBPostprocessor", "text_repr_type": "quad"})
    narrow = build_postprocessor(
        {"type": "DBPostprocessor", "text_repr_type": "quad", "min_text_width": 8}
    )
    line = _maps((10, 10, 80, 14, 0.8))
    assert len(wide(line)) == 1 and narrow(line) == []
    with pytest.raises(ConfigError, match="text_repr_type"):
        build_postprocessor({"type": "DBPostprocessor", "text_repr_type": "curve"})
    with pytest.raises(ConfigError, match="postprocessor type 'NoPostprocessor'; supported: .*DB"):
        build_postprocessor({"type": "NoPostprocessor"})


def test_db_regions_in_the_padding_are_kept() -> None:
    post = build_postprocessor({"type": "DBPostprocessor", "text_repr_type": "quad"})
    (boundary,) = post(_maps((0, 50, 30, 64, 0.7)))
    scaled = rescale_boundaries([boundary], np.array([2.0, 0.5, 2.0, 0.5], dtype=np.float32))[0]
    assert min(scaled[0:8:2]) < 0  # not clipped, as MMOCR
    assert scaled[0] == pytest.approx(boundary[0] / 2) and scaled[1] == pytest.approx(
        boundary[1] * 2
    )
    assert scaled[-1] == boundary[-1]


def test_rescale_uses_float32_factors() -> None:
    factor = np.array([1.15, 1.15, 1.15, 1.15], dtype=np.float32)
    (out,) = rescale_boundaries([[100.0, 200.0, 0.5]], factor, downsample_ratio=1.0)
    inv = np.float32(1.0 / factor[0])
    assert out == [100.0 * float(inv), 200.0 * float(inv), 0.5]


def test_box_score_and_unclip() -> None:
    bitmap = np.zeros((10, 10), np.float32)
    bitmap[2:5, 2:5] = 1.0
    square = np.array([[2, 2], [4, 2], [4, 4], [2, 4]], np.int32)
    assert box_score_fast(bitmap, square) == 1.0
    (path,) = unclip(square, 1.5)
    assert path.min() < 2 and path.max() > 4


def test_ctc_decoding() -> None:
    convertor = build_convertor(
        {"type": "CTCConvertor", "dict_type": "DICT36", "with_unknown": False, "max_seq_len": 40}
    )
    assert isinstance(convertor, CTCConvertor) and convertor.num_classes() == 37
    assert convertor.idx2char[0] == "<BLK>" and convertor.idx2char[1] == "0"
    columns = [1, 1, 0, 1, 12, 12, 0, 0]  # "0", "0" again after a blank, "b"
    logits = torch.full((1, len(columns), 37), -5.0)
    for t, c in enumerate(columns):
        logits[0, t, c] = 5.0
    indexes, scores = convertor.tensor2idx(logits, [{"valid_ratio": 1.0}])
    assert indexes == [[1, 1, 12]] and convertor.idx2str(indexes) == ["00b"]
    assert scores[0] == pytest.approx([float(torch.softmax(logits[0, 0], 0)[1])] * 3)
    half, _ = convertor.tensor2idx(logits, [{"valid_ratio": 0.5}])  # ceil(8 * 0.5) columns
    assert convertor.idx2str(half) == ["00"]
    with pytest.raises(ValueError, match="metas"):
        convertor.tensor2idx(logits, [])


def test_ctc_unknown_token_and_dict_types() -> None:
    convertor = CTCConvertor(dict_type="DICT90", with_unknown=True)
    assert convertor.num_classes() == 92 and convertor.unknown_idx == 91
    assert convertor.idx2char[-1] == "<UKN>"
    assert len(DICT36) == 36 and len(DICT90) == 90 and DICT90[36] == "A"
    with pytest.raises(ConfigError, match="label convertor type 'NoSuchConvertor'.*SegConvertor"):
        build_convertor({"type": "NoSuchConvertor"})


def test_dictionary_files(tmp_path: Path) -> None:
    good = tmp_path / "dict.txt"
    good.write_bytes("a\n\nb\r\n€\n".encode())
    assert load_dictionary(dict_file=good) == ["a", "b", "€"]
    convertor = build_convertor(
        {"type": "CTCConvertor", "dict_file": "dict.txt"}, base_dir=tmp_path
    )
    assert convertor.idx2char[1:4] == ["a", "b", "€"] and convertor.idx2char[-1] == "<UKN>"
    bad = tmp_path / "bad.txt"
    bad.write_text("a\nbc\n")
    with pytest.raises(ConfigError, match="line 2"):
        load_dictionary(dict_file=bad)
    dup = tmp_path / "dup.txt"
    dup.write_text("a\na\n")
    with pytest.raises(ConfigError, match="duplicated"):
        load_dictionary(dict_file=dup)
    with pytest.raises(ConfigError, match="Cannot read"):
        load_dictionary(dict_file=tmp_path / "missing.txt")
    assert load_dictionary(dict_list=["x", "y"]) == ["x", "y"]
