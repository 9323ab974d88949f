"""``ocrserve request`` without a server (httpx's mock transport): one flag per request option of
`ocrserve.options.OPTIONS`, typed, ``--option NAME=VALUE`` for any, flags that would clash left
to ``--option``, and a PDF read page by page with its progress bar and its failed pages."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrserve import errors
from ocrserve.cli import build_parser, main
from ocrserve.client import request_command
from ocrserve.client.connection import management_query
from ocrserve.client.pages import NDJSON
from ocrserve.client.request_command import (
    ProgressBar,
    add_option_flags,
    format_text,
    option_flag,
    request_options,
)
from ocrserve.client.results import parse_result
from ocrserve.options import OPTIONS, Option

URL = ["--inference-address", "http://127.0.0.1:9", "--token", "k" * 43, "--retries", "0"]
#: A value on the command line for each kind of option, and what it must become.
SAMPLES: dict[type, tuple[list[str], Any]] = {
    float: (["0.25"], 0.25),
    int: (["40"], 40),
    str: (["2"], "2"),
    bool: ([], True),
}


def _request_parser() -> argparse.ArgumentParser:
    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    parser: argparse.ArgumentParser = sub.choices["request"]  # type: ignore[index]
    return parser


def _parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["request", "ocr", "page.png", *argv])


def test_every_request_option_has_a_flag_of_its_type() -> None:
    flags = _request_parser()._option_string_actions
    for option in OPTIONS:
        flag = option_flag(option)
        if option.name == "format":  # `request`'s own --format (text or json) has the flag
            continue
        assert flag == "--" + option.name.replace("_", "-")
        assert flag in flags, f"{option.name} has no flag"
        assert option.description.split()[0] in (flags[flag].help or "")
        argv, expected = SAMPLES[option.kind]
        if option.choices:
            argv, expected = [option.choices[-1]], option.choices[-1]
            assert f"{{{','.join(option.choices)}}}" in _request_parser().format_help()
        sent = request_options(_parse(flag, *argv))
        assert sent == {option.name: expected}
        assert type(sent[option.name]) is option.kind
        if option.kind is bool:
            assert request_options(_parse("--no-" + flag[2:])) == {option.name: False}


def test_the_flags_values_reach_the_query_string_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(b"\x89PNG not really")
    seen = _mock_server(monkeypatch, lambda r: httpx.Response(200, json={"result": []}))
    argv = ["--box-score-threshold", "0.3", "--max-side", "1280", "--drop-score", "0.5",
            "--char-scores", "--no-detect-only", "--pages", "1-2", "--option", "dpi=72",
            "--option", "text_layer=auto"]  # fmt: skip
    assert main(["request", "ocr", str(image), *URL, *argv]) == 0
    (request,) = seen
    assert dict(request.url.params) == {
        "box_score_threshold": "0.3", "max_side": "1280", "drop_score": "0.5",
        "char_scores": "true", "detect_only": "false", "pages": "1-2", "dpi": "72",
        "text_layer": "auto",
    }  # fmt: skip
    assert request.content == image.read_bytes()


@pytest.mark.parametrize("flag", ["--inference-address", "--url"])
@pytest.mark.parametrize("address", ["127.0.0.1:9", "http://127.0.0.1:9"])
def test_inference_address_and_its_alias_take_either_form(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: str, address: str
) -> None:
    """The address is spelled --inference-address as start, stop and key spell it; --url is
    the same option; HOST:PORT and http://HOST:PORT both work."""
    image = tmp_path / "page.png"
    image.write_bytes(b"\x89PNG not really")
    seen = _mock_server(monkeypatch, lambda r: httpx.Response(200, json={"result": []}))
    argv = [flag, address, "--token", "k" * 43, "--retries", "0"]
    assert main(["request", "ocr", str(image), *argv]) == 0
    assert [str(r.url) for r in seen] == ["http://127.0.0.1:9/predictions/ocr"]


def test_bad_flags_and_options_stop_before_any_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "page.png"
    image.write_bytes(b"png")
    seen = _mock_server(monkeypatch, lambda r: httpx.Response(200, json={}))
    with pytest.raises(SystemExit) as info:
        main(["request", "ocr", str(image), *URL, "--max-side", "12.5"])
    assert info.value.code == 2 and "--max-side: invalid int value" in capsys.readouterr().err
    for argv, message in [
        (["--option", "max_side"], "--option 'max_side': give NAME=VALUE"),
        (["--option", "=3"], "give NAME=VALUE"),
        (["--max-side", "64", "--option", "max_side=32"], "'max_side' is given twice"),
    ]:
        assert main(["request", "ocr", str(image), *URL, *argv]) == 2
        assert message in capsys.readouterr().err
    assert seen == []


def test_an_option_whose_flag_is_taken_is_left_to_option(monkeypatch: pytest.MonkeyPatch) -> None:
    clash = Option("out", str, "A 50% made-up option.", frozenset({"e2e"}))
    monkeypatch.setattr(request_command, "OPTIONS", (*OPTIONS, clash))
    parser = argparse.ArgumentParser()
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument("--out")
    parser.add_argument("--option", action="append", default=[], dest="options")
    fmt = next(o for o in OPTIONS if o.name == "format")  # the request option `format`
    assert add_option_flags(parser) == [fmt, clash]
    parser.format_help()  # a '%' in a description is not taken for a format
    args = parser.parse_args(["--format", "json", "--option", "format=hocr", "--dpi", "72"])
    assert args.format == "json"
    assert request_options(args) == {"dpi": 72, "format": "hocr"}


def test_options_of_the_python_client_are_sent_as_the_cli_sends_them() -> None:
    assert management_query(max_side=1280, drop_score=0.5, char_scores=True, pages="1") == {
        "max_side": "1280", "drop_score": "0.5", "char_scores": "true", "pages": "1"
    }  # fmt: skip


def _page(number: int, word: str) -> dict[str, Any]:
    line = {"box": [0, 0, 9, 0, 9, 4, 0, 4], "box_score": 0.9, "text": word, "text_score": 0.99}
    return {"page": number, "width": 640, "height": 240, "result": [line]}


TIMEOUT = {"code": 504, "type": "WorkerTimeoutException", "message": "too slow"}
TIMED_OUT = {"page": 2, "width": 640, "height": 240, "error": TIMEOUT}


def test_a_pdf_is_read_page_by_page_with_a_bar_and_its_failed_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf = tmp_path / "three.pdf"
    pdf.write_bytes(b"%PDF-1.7 three pages")
    lines = [_page(1, "ALPHA"), TIMED_OUT, _page(3, "CHARLIE")]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    headers = {"content-type": NDJSON, "x-page-count": "3"}
    seen = _mock_server(monkeypatch, lambda r: httpx.Response(200, headers=headers, content=body))
    assert main(["request", "ocr", str(pdf), *URL, "--pages", "1-3", "--progress"]) == 1
    (request,) = seen
    assert request.headers["accept"] == NDJSON and request.url.params["pages"] == "1-3"
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "--- page 1 ---", "ALPHA\t0.9900", "--- page 2 ---",
        "error: 504 WorkerTimeoutException: too slow", "--- page 3 ---", "CHARLIE\t0.9900",
    ]  # fmt: skip
    assert f"\r[{'#' * 30}] 3/3 pages\n" in err and "0/3 pages" in err
    assert f"{pdf}: page 2: 504 WorkerTimeoutException: too slow" in err

    # JSON: the document's answer as the server sends it at once; no bar off a terminal.
    assert main(["request", "ocr", str(pdf), *URL, "--format", "json"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out) == {"pages": lines} and "pages\n" not in err


def test_quiet_and_progress_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("--quiet", "--progress")
    assert "not allowed with argument" in capsys.readouterr().err


def test_a_document_that_fails_ends_its_bar_line() -> None:
    stream = io.StringIO()
    bar = ProgressBar(stream, width=10, unit="pages")
    bar(0, 4)
    bar(1, 4)
    bar.close()
    bar.close()
    assert stream.getvalue() == "\r[----------] 0/4 pages\r[##--------] 1/4 pages\n"
    finished = io.StringIO()
    done = ProgressBar(finished, width=4)
    done(2, 2)
    done.close()
    assert finished.getvalue() == "\r[####] 2/2 images\n"


def test_format_text_prints_a_pages_error_in_place_of_its_text() -> None:
    result = parse_result({"pages": [_page(1, "ALPHA"), TIMED_OUT]})
    assert format_text(result).splitlines() == [
        "--- page 1 ---", "ALPHA\t0.9900", "--- page 2 ---",
        "error: 504 WorkerTimeoutException: too slow",
    ]  # fmt: skip
    assert isinstance(result.pages[1].error, errors.WorkerTimeout)  # type: ignore[attr-defined]


def _mock_server(
    monkeypatch: pytest.MonkeyPatch, answer: Callable[[httpx.Request], httpx.Response]
) -> list[httpx.Request]:
    """Every `httpx.Client` made from now on answers with ``answer``; the requests it saw."""
    seen: list[httpx.Request] = []
    real = httpx.Client

    def handler(request: httpx.Request) -> httpx.Response:
        request.read()
        seen.append(request)
        return answer(request)

    def client(**kwargs: Any) -> httpx.Client:
        return real(transport=httpx.MockTransport(handler), **kwargs)

    monkeypatch.setattr(httpx, "Client", client)
    return seen
