"""Reading order on line boxes made here: columns one after another, titles and captions across
the gutter kept in place, a table's short cells and a contents list's page numbers kept in rows,
one column top to bottom."""

from __future__ import annotations

import numpy as np

from ocrserve.documents.order import column_order, row_order

LINE = 24  # a line's height, in pixels
LEAD = 32  # from one line's top to the next one's


def _quad(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)


def _column(
    x0: float, x1: float, top: float, count: int, name: str
) -> list[tuple[str, np.ndarray]]:
    return [
        (f"{name}{k}", _quad(x0, top + k * LEAD, x1, top + k * LEAD + LINE)) for k in range(count)
    ]


def _read(lines: list[tuple[str, np.ndarray]]) -> list[str]:
    return [lines[i][0] for i in column_order([q for _, q in lines])]


def test_two_columns_on_one_baseline_grid_read_column_by_column() -> None:
    # Lines of both columns on the same rows: reading across rows would interleave them.
    left = _column(100, 580, 200, 10, "L")
    right = _column(620, 1100, 200, 10, "R")
    lines = [pair for row in zip(left, right) for pair in row]  # the detector's order: rows
    assert _read(lines) == [name for name, _ in left + right]


def test_title_above_and_caption_below_the_columns_stay_in_place() -> None:
    title = [("title", _quad(100, 100, 1100, 140))]
    left = _column(100, 580, 200, 6, "L")
    right = _column(620, 1100, 210, 5, "R")  # a shorter column, off the left one's rows
    caption = [("caption", _quad(100, 420, 1000, 444))]
    after = _column(100, 1100, 470, 2, "A")
    lines = caption + right + after + title + left
    expected = ["title"] + [n for n, _ in left + right] + ["caption"] + [n for n, _ in after]
    assert _read(lines) == expected


def test_a_heading_in_one_column_is_read_in_it() -> None:
    left = [("head", _quad(100, 200, 300, 230)), *_column(100, 580, 240, 6, "L")]
    right = _column(620, 1100, 200, 8, "R")
    assert _read(right + left) == [n for n, _ in left + right]


def test_one_column_of_ragged_lines_reads_top_to_bottom() -> None:
    lines = [(f"l{k}", _quad(100, 100 + k * LEAD, 300 + 97 * k % 800, 100 + k * LEAD + LINE))
             for k in range(12)]  # fmt: skip
    assert _read(lines[::-1]) == [n for n, _ in lines]


def test_a_table_of_short_cells_stays_in_rows() -> None:
    # Two short cells per row and a wide gap: a column of cells is no text column.
    lines = []
    for k in range(6):
        y = 100 + k * LEAD
        lines += [
            (f"label{k}", _quad(100, y, 200, y + LINE)),
            (f"value{k}", _quad(700, y, 760, y + LINE)),
        ]
    assert _read(lines) == [n for n, _ in lines]


def test_a_contents_lists_page_numbers_stay_beside_their_entries() -> None:
    # Left: a table of contents, each entry with its page number in a narrow column of its
    # own; right: prose. The numbers are too short for a column: they join the entries.
    left = []
    for k in range(8):
        y = 200 + k * LEAD
        left += [
            (f"entry{k}", _quad(100, y, 500, y + LINE)),
            (f"page{k}", _quad(560, y, 575, y + LINE)),
        ]
    right = _column(640, 1100, 200, 8, "R")
    assert _read(right + left) == [n for n, _ in left + right]


def test_row_order_puts_lines_of_one_row_left_to_right() -> None:
    boxes = [
        (300.0, 102.0, 400.0, 126.0),
        (100.0, 100.0, 200.0, 124.0),
        (100.0, 140.0, 400.0, 164.0),
    ]
    assert row_order(boxes, [0, 1, 2]) == [1, 0, 2]


def test_nothing_and_one_line() -> None:
    assert column_order([]) == []
    assert column_order([_quad(0, 0, 10, 5)]) == [0]
