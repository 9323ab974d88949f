"""`ocrserve.compare.matching`: reading answers, matching instances one to one, tolerances, the
report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ocrserve.compare.matching import (
    Instance,
    Tolerances,
    compare_results,
    parse_instances,
    vertex_distance,
)
from ocrserve.errors import ResultFormatError

TOL = Tolerances()


def _box(x: float, y: float, w: float = 40, h: float = 10, score: float = 0.9) -> list[float]:
    return [x, y, x + w, y, x + w, y + h, x, y + h, score]


def _det(*boxes: list[float]) -> dict[str, Any]:
    return {"boundary_result": [list(b) for b in boxes], "filename": None}


def _line(box: list[float], text: str, box_score: float = 0.8, text_score: float = 0.95) -> dict:
    return {"box": box[:-1], "box_score": box_score, "text": text, "text_score": text_score}


# -- reading answers -------------------------------------------------------------------------


def test_parse_each_task() -> None:
    det = parse_instances("textdet", _det(_box(0, 0, score=0.7)))
    assert det == [Instance((0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0), 0.7)]
    assert det[0].vertices[2] == (40.0, 10.0)
    rec = parse_instances("textrecog", {"text": "abc", "score": 0.5})
    assert rec == [Instance(score=0.5, text="abc")]
    e2e = parse_instances("e2e", {"result": [_line(_box(1, 2), "hi", 0.8, 0.9)]})
    assert e2e[0].text == "hi" and e2e[0].score == 0.8 and e2e[0].text_score == 0.9
    assert parse_instances("textdet", {"boundary_result": []}) == []


@pytest.mark.parametrize(
    ("task", "result", "message"),
    [
        ("textdet", {"text": "a", "score": 1.0}, "no boundary_result (keys: score, text)"),
        ("textdet", {"boundary_result": [[1, 2, 3, 4]]}, "boundary #0"),
        ("textdet", {"boundary_result": [[1, 2, "x", 4, 0.5]]}, "not a number"),
        ("textrecog", {"boundary_result": []}, "no text, score"),
        ("textrecog", {"text": 3, "score": 1.0}, "not a string"),
        ("e2e", {"result": [{"box": [1, 2, 3]}]}, "result #0"),
        ("e2e", [1, 2], "not an object"),
    ],
)
def test_parse_refuses_other_forms(task: str, result: Any, message: str) -> None:
    with pytest.raises(ResultFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_instances(task, result)


# -- matching ----------------------------------------------------------------------------------


def test_vertex_distance() -> None:
    a = Instance(tuple(_box(0, 0)[:-1]))
    b = Instance(tuple(_box(0.3, 0.4)[:-1]))
    assert vertex_distance(a, b) == pytest.approx(0.5)
    triangle = Instance((0.0, 0.0, 40.0, 0.0, 40.0, 10.0))
    assert vertex_distance(a, triangle) == pytest.approx(10.0)  # Hausdorff of the vertex sets


def test_identical_answers_agree_in_any_order() -> None:
    boxes = [_box(0, 0), _box(100, 0), _box(0, 50, score=0.3)]
    comp = compare_results("a.png", "textdet", _det(*boxes), _det(*boxes[::-1]), TOL)
    assert comp.ok, comp.reasons()
    assert sorted((p.local, p.served) for p in comp.pairs) == [(0, 2), (1, 1), (2, 0)]
    assert comp.max_vertex_diff == 0 and comp.max_score_diff == 0
    assert comp.reasons() == []


@pytest.mark.parametrize(("shift", "ok"), [(0.4, True), (0.6, False)])
def test_vertex_tolerance(shift: float, ok: bool) -> None:
    comp = compare_results("a.png", "textdet", _det(_box(10, 10)), _det(_box(10 + shift, 10)), TOL)
    assert len(comp.pairs) == 1 and comp.ok is ok
    assert comp.max_vertex_diff == pytest.approx(shift)
    if not ok:
        assert comp.reasons() == ["local #0 / served #0: vertices differ by 0.6 px (tolerance 0.5)"]
        assert comp.differing("local") == {0} and comp.differing("served") == {0}


def test_vertex_tolerance_is_overridable() -> None:
    local, served = _det(_box(10, 10)), _det(_box(12, 10))
    assert not compare_results("a", "textdet", local, served, TOL).ok
    assert compare_results("a", "textdet", local, served, Tolerances(vertex=2.5)).ok


@pytest.mark.parametrize(("delta", "ok"), [(5e-5, True), (2e-4, False)])
def test_score_tolerance(delta: float, ok: bool) -> None:
    comp = compare_results(
        "a", "textdet", _det(_box(0, 0, score=0.5)), _det(_box(0, 0, score=0.5 + delta)), TOL
    )
    assert comp.ok is ok and comp.max_score_diff == pytest.approx(delta)
    assert compare_results(
        "a",
        "textdet",
        _det(_box(0, 0, score=0.5)),
        _det(_box(0, 0, score=0.5 + delta)),
        Tolerances(score=1e-3),
    ).ok


def test_moved_polygon_matches_by_overlap_and_differs() -> None:
    comp = compare_results(
        "a", "textdet", _det(_box(0, 0, w=100, h=20)), _det(_box(3, 0, w=100, h=20)), TOL
    )
    assert [(p.local, p.served) for p in comp.pairs] == [(0, 0)]
    assert not comp.ok and comp.max_vertex_diff == pytest.approx(3.0)
    # Below the IoU threshold they are two unrelated instances.
    comp = compare_results(
        "a",
        "textdet",
        _det(_box(0, 0, w=100, h=20)),
        _det(_box(3, 0, w=100, h=20)),
        Tolerances(match_iou=0.99),
    )
    assert comp.pairs == [] and comp.only_local == [0] and comp.only_served == [0]


def test_extra_and_missing_instances() -> None:
    comp = compare_results(
        "a",
        "textdet",
        _det(_box(0, 0), _box(500, 500)),
        _det(_box(0, 0), _box(200, 0), _box(0, 300)),
        TOL,
    )
    assert [(p.local, p.served) for p in comp.pairs] == [(0, 0)]
    assert comp.only_local == [1] and comp.only_served == [1, 2]
    assert not comp.ok
    assert comp.reasons() == [
        "local #1: no served counterpart",
        "served #1, #2: no local counterpart",
    ]


def test_greedy_takes_the_closest_first() -> None:
    local = _det(_box(0, 0, w=100, h=20), _box(2, 0, w=100, h=20))
    served = _det(_box(2.1, 0, w=100, h=20), _box(0, 0, w=100, h=20))
    comp = compare_results("a", "textdet", local, served, TOL)
    assert comp.ok and sorted((p.local, p.served) for p in comp.pairs) == [(0, 1), (1, 0)]


def test_vertex_count_differs() -> None:
    five = [0, 0, 20, 0, 40, 0, 40, 10, 0, 10, 0.9]
    comp = compare_results("a", "textdet", _det(_box(0, 0)), _det(five), TOL)
    assert len(comp.pairs) == 1 and not comp.ok
    assert "4 vertices vs 5" in comp.reasons()[0]


def test_many_instances_match_quickly() -> None:
    boxes = [_box(x * 50, y * 20, w=45, h=15) for x in range(30) for y in range(30)]
    comp = compare_results("a", "textdet", _det(*boxes), _det(*reversed(boxes)), TOL)
    assert comp.ok and len(comp.pairs) == 900


def test_e2e_text_and_scores() -> None:
    box = _box(0, 0)
    local = {"result": [_line(box, "OPEN 24 HOURS"), _line(_box(0, 40), "Fresh")]}
    served = {"result": [_line(box, "OPEN 24 H0URS"), _line(_box(0, 40), "Fresh", text_score=0.9)]}
    comp = compare_results("a", "e2e", local, served, TOL)
    assert comp.text_mismatches == 1 and not comp.ok
    assert comp.max_score_diff == pytest.approx(0.05)
    reasons = comp.reasons()
    assert "local #0 / served #0: text 'OPEN 24 HOURS' vs 'OPEN 24 H0URS'" in reasons
    assert any("text score 0.950000 vs 0.900000" in r for r in reasons)


def test_recognition() -> None:
    same = compare_results(
        "a", "textrecog", {"text": "ab", "score": 0.9}, {"text": "ab", "score": 0.90001}, TOL
    )
    assert same.ok and same.max_vertex_diff is None and len(same.pairs) == 1
    other = compare_results(
        "a", "textrecog", {"text": "ab", "score": 0.9}, {"text": "abc", "score": 0.9}, TOL
    )
    assert not other.ok and other.text_mismatches == 1


def test_recognition_with_character_scores() -> None:
    """MMOCR's NRTR answers a list of character scores as its score."""
    local = {"text": "ab", "score": [0.5, 0.25]}
    assert parse_instances("textrecog", local)[0].char_scores == (0.5, 0.25)
    assert compare_results("a", "textrecog", local, {"text": "ab", "score": [0.5, 0.25001]}, TOL).ok
    comp = compare_results("a", "textrecog", local, {"text": "ab", "score": [0.5, 0.3]}, TOL)
    assert comp.max_score_diff == pytest.approx(0.05)
    assert comp.reasons() == [
        "local #0 / served #0: character scores differ by up to 0.05 (tolerance 0.0001)"
    ]
    comp = compare_results("a", "textrecog", local, {"text": "ab", "score": 0.4}, TOL)
    assert "2 character scores vs 0" in comp.reasons()[0]


def test_other_keys_must_be_equal() -> None:
    comp = compare_results("a", "textdet", _det(), {"boundary_result": []}, TOL)
    assert comp.problems == ["key 'filename' only in the local answer"] and not comp.ok
    comp = compare_results("a", "textdet", _det(), {"boundary_result": [], "filename": "x"}, TOL)
    assert comp.problems == ["filename: None (local) vs 'x' (served)"]


def test_an_answer_of_another_task_is_a_difference() -> None:
    comp = compare_results("a", "textdet", _det(_box(0, 0)), {"text": "x", "score": 0.5}, TOL)
    assert not comp.ok and comp.pairs == []
    assert comp.problems == [
        "served answer: not a textdet result: no boundary_result (keys: score, text)"
    ]


def test_report_json_round_trips() -> None:
    comp = compare_results(
        "dir/a.png", "textdet", _det(_box(0, 0), _box(90, 0)), _det(_box(0.7, 0)), TOL
    )
    doc = json.loads(json.dumps(comp.to_json()))
    assert doc["ok"] is False and doc["image"] == "dir/a.png" and doc["task"] == "textdet"
    assert (doc["local_count"], doc["served_count"], doc["matched"]) == (2, 1, 1)
    assert doc["only_local"] == [1] and doc["only_served"] == []
    assert doc["max_vertex_diff"] == pytest.approx(0.7) and doc["text_mismatches"] == 0
    assert doc["pairs"][0]["ok"] is False and doc["local_result"]["filename"] is None
    assert doc["reasons"] == comp.reasons()
