"""ocrserve.options: what each task takes, typing and bounds, pinned values, page ranges."""

from __future__ import annotations

from typing import Any

import pytest

from ocrserve.errors import InvalidInput
from ocrserve.options import (
    OPTIONS,
    check_pinned,
    document_pages,
    options_for,
    parse_options,
    parse_pages,
    split_options,
    task_schema,
)


def test_each_task_takes_its_options() -> None:
    document = {"dpi", "pages", "page_image"}
    assert set(options_for("textdet")) == {"box_score_threshold", "max_side", *document}
    assert set(options_for("textrecog")) == {"char_scores", *document}
    assert set(options_for("e2e")) == {o.name for o in OPTIONS} - set()


@pytest.mark.parametrize(
    ("raw", "typed"),
    [
        ({"drop_score": "0.25"}, {"drop_score": 0.25}),
        ({"drop_score": 1}, {"drop_score": 1.0}),
        ({"max_side": "640"}, {"max_side": 640}),
        ({"max_side": 640.0}, {"max_side": 640}),
        ({"char_scores": "TRUE", "detect_only": "0"}, {"char_scores": True, "detect_only": False}),
        ({"char_scores": True}, {"char_scores": True}),
        ({"pages": " 1-3, 5 "}, {"pages": "1-3, 5"}),
        ({"pages": 2}, {"pages": "2"}),
        ({"dpi": "300"}, {"dpi": 300}),
        ({"text_layer": " only "}, {"text_layer": "only"}),
        ({"page_image": "yes"}, {"page_image": True}),
    ],
)
def test_values_are_typed(raw: dict[str, Any], typed: dict[str, Any]) -> None:
    out = parse_options("e2e", raw)
    assert out == typed
    assert all(type(out[k]) is type(typed[k]) for k in typed)


@pytest.mark.parametrize(
    ("task", "raw", "message"),
    [
        ("textdet", {"drop_score": 0.5}, "Unknown option 'drop_score' for a textdet model"),
        ("e2e", {"nope": 1}, "Unknown option 'nope'"),
        ("e2e", {"drop_score": -0.1}, "'drop_score' must be between 0 and 1"),
        ("e2e", {"drop_score": "inf"}, "'drop_score' must be a finite number"),
        ("e2e", {"drop_score": True}, "'drop_score' must be a number"),
        ("e2e", {"drop_score": [0.5]}, "'drop_score' must be a number"),
        ("e2e", {"max_side": 640.5}, "'max_side' must be an integer"),
        ("e2e", {"max_side": "9" * 5000}, "'max_side' must be an integer"),
        ("e2e", {"max_side": 20000}, "'max_side' must be between 32 and 16384"),
        ("e2e", {"dpi": 10}, "'dpi' must be between 36 and 600"),
        ("e2e", {"text_layer": "never"}, "'text_layer' must be one of auto, ocr, only"),
        ("e2e", {"detect_only": 2}, "'detect_only' must be true or false"),
        ("e2e", {"pages": "0"}, "'pages' has an empty or invalid range"),
        ("e2e", {"pages": "1-"}, "'pages' must look like"),
        ("e2e", {"pages": "1," * 200}, "'pages' must look like"),
        ("e2e", {"pages": {"a": 1}}, "'pages' must be a string"),
    ],
)
def test_bad_options_name_themselves(task: str, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        parse_options(task, raw)


def test_pinned_options_are_defaults_that_requests_cannot_change() -> None:
    pinned = check_pinned("e2e", {"drop_score": "0.9"})
    assert pinned == {"drop_score": 0.9}
    assert parse_options("e2e", {}, pinned) == {"drop_score": 0.9}
    assert parse_options("e2e", {"drop_score": "0.90"}, pinned) == {"drop_score": 0.9}
    assert parse_options("e2e", {"char_scores": 1}, pinned) == {
        "drop_score": 0.9,
        "char_scores": True,
    }
    with pytest.raises(InvalidInput, match="'drop_score' is pinned to 0.9 by the model's archive"):
        parse_options("e2e", {"drop_score": 0.5}, pinned)


def test_schema_shows_pinned_values_and_allows_nothing_else() -> None:
    schema = task_schema("textdet", {"max_side": 960})
    assert schema["additionalProperties"] is False
    assert schema["properties"]["max_side"]["enum"] == [960]
    assert schema["properties"]["box_score_threshold"] == {
        "type": "number",
        "description": schema["properties"]["box_score_threshold"]["description"],
        "minimum": 0.0,
        "maximum": 1.0,
    }


def test_pages_and_split() -> None:
    assert parse_pages("1-3,5,5-5") == [(1, 3), (5, 5), (5, 5)]
    assert split_options({"dpi": 72, "pages": "1", "drop_score": 0.5}) == (
        {"dpi": 72, "pages": "1"},
        {"drop_score": 0.5},
    )


def test_document_pages_bounds_what_a_request_may_read() -> None:
    assert document_pages(b"\x89PNG\r\n", {"pages": "1-9"}, 50) == 1
    assert document_pages(b"%PDF-1.7 ...", {}, 50) == 50
    assert document_pages(b"%PDF-1.7 ...", {"pages": "2-4,9"}, 50) == 4
    assert document_pages(b"II*\x00...", {"pages": "1-100000"}, 50) == 50
