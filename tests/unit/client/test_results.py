"""Answers as typed results: each task's form, MMOCR's per-character scores, other forms."""

from __future__ import annotations

from ocrserve.client.results import (
    Box,
    Detection,
    Document,
    EndToEnd,
    Page,
    Recognition,
    Result,
    TextLine,
    parse_result,
)


def test_detection_boxes_carry_their_score() -> None:
    raw = {"boundary_result": [[1, 2, 3, 2, 3, 4, 1, 4, 0.9], [0, 0, 5, 0, 5, 5]]}
    result = parse_result(raw)
    assert result == Detection(raw, [Box([(1, 2), (3, 2), (3, 4), (1, 4)], 0.9),
                                     Box([(0, 0), (5, 0), (5, 5)], None)])  # fmt: skip
    assert result.raw is raw


def test_recognition_and_mmocr_per_character_scores() -> None:
    raw = {"text": "ab", "score": 0.5}
    assert parse_result(raw) == Recognition(raw, "ab", 0.5)
    assert parse_result({"text": "ab", "score": [0.5, 1.0]}).score == 0.75  # type: ignore[attr-defined]


def test_end_to_end_lines_in_order() -> None:
    raw = {"result": [
        {"box": [0, 0, 2, 0, 2, 1, 0, 1], "box_score": 0.8, "text": "a", "text_score": 0.9},
        {"box": [0, 2, 2, 2, 2, 3, 0, 3], "box_score": 0.7, "text": "b", "text_score": 0.6},
    ]}  # fmt: skip
    result = parse_result(raw)
    assert isinstance(result, EndToEnd) and result.text == "a\nb"
    assert result.lines[0] == TextLine(Box([(0, 0), (2, 0), (2, 1), (0, 1)], 0.8), "a", 0.9)


def test_other_forms_keep_only_the_raw_json() -> None:
    for raw in ({"labels": [1]}, [1, 2], "text", {"result": [{"no": "box"}]}):
        result = parse_result(raw)
        assert type(result) is Result and result.raw == raw


def test_documents_answer_each_page_in_its_form() -> None:
    line = {"box": [0, 0, 2, 0, 2, 1, 0, 1], "box_score": 0.8, "text": "a", "text_score": 0.9}
    raw = {"pages": [
        {"page": 1, "width": 640, "height": 240, "result": [line]},
        {"page": 2, "width": 640, "height": 240, "text": "b", "score": 0.5},
    ]}  # fmt: skip
    result = parse_result(raw)
    assert isinstance(result, Document) and [p.number for p in result.pages] == [1, 2]
    first, second = result.pages
    assert (first.width, first.height) == (640, 240)
    assert isinstance(first.result, EndToEnd) and first.result.text == "a"
    assert second == Page(2, 640, 240, Recognition({"text": "b", "score": 0.5}, "b", 0.5))
    assert parse_result({"pages": [{"page": "1"}]}) == Result({"pages": [{"page": "1"}]})


def test_document_pages_with_errors_timings_and_images() -> None:
    from ocrserve import errors

    line = {"box": [0, 0, 2, 0, 2, 1, 0, 1], "box_score": 0.8, "text": "a", "text_score": 0.9}
    timeout = {"code": 504, "type": "WorkerTimeoutException", "message": "page 2 took too long"}
    raw = {"pages": [
        {"page": 1, "width": 640, "height": 240, "time_ms": 12.5, "done_at": 1700000000.25,
         "image": "data:image/jpeg;base64,AAAA", "result": [line]},
        {"page": 2, "width": 640, "height": 240, "time_ms": 3, "done_at": 1700000001,
         "error": timeout},
        {"page": 3, "error": {"code": 400, "type": "BadRequestException", "message": "bad"}},
    ]}  # fmt: skip
    result = parse_result(raw)
    assert isinstance(result, Document) and [p.number for p in result.pages] == [1, 2, 3]
    first, second, third = result.pages
    assert first.error is None and first.raw is raw["pages"][0]
    assert (first.time_ms, first.done_at) == (12.5, 1700000000.25)
    assert first.image == "data:image/jpeg;base64,AAAA"
    assert isinstance(first.result, EndToEnd) and first.result.raw == {"result": [line]}
    assert second.result == Result({}) and (second.time_ms, second.done_at) == (3.0, 1700000001.0)
    assert type(second.error) is errors.WorkerTimeout and second.image is None
    assert (second.error.status, second.error.type) == (504, "WorkerTimeoutException")
    assert second.error.message == "page 2 took too long"
    # A page that failed before its size was known still parses, as 0 x 0.
    assert (third.width, third.height, third.time_ms) == (0, 0, None)
    assert type(third.error) is errors.BadRequest and third.error.status == 400
    # Not a page: no number, or neither a size nor an error.
    for pages in ([{"page": 1, "error": "text"}], [{"page": True, "width": 1, "height": 1}]):
        assert type(parse_result({"pages": pages})) is Result
