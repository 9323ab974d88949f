"""Streamed document answers through the client, on a real server with the bundled end-to-end
``ocr`` model: `Client.predict_pages` and `AsyncClient.predict_pages` give each page of a PDF
as soon as the server has read it, and ``ocrserve request`` reads a PDF page by page with its
options and a bar of its pages."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocrserve import AsyncClient, Client, errors
from ocrserve.cli import main
from ocrserve.client import EndToEnd, Page
from tests.conftest import REPO, ServerProcess, running
from tests.documents import pdf_of, text_page

pytestmark = pytest.mark.slow

WORDS = ["ALPHA", "BRAVO", "CHARLIE"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running(ServerProcess(tmp_path_factory.mktemp("pages"), "--models", "ocr"))


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("documents") / "three.pdf"
    path.write_bytes(pdf_of([text_page(word) for word in WORDS]))
    return path


def _text(page: Page) -> str:
    assert page.error is None and isinstance(page.result, EndToEnd), page
    return page.result.text


def test_each_page_is_given_before_the_last_is_read(srv: ServerProcess, pdf: Path) -> None:
    progress: list[tuple[int, int]] = []
    given_at: list[float] = []
    pages: list[Page] = []
    with Client(srv.url, timeout=300) as client:
        for page in client.predict_pages("ocr", pdf, progress=lambda d, t: progress.append((d, t))):
            given_at.append(time.time())
            pages.append(page)
    assert [(p.number, _text(p)) for p in pages] == list(enumerate(WORDS, 1))
    assert progress == [(0, 3), (1, 3), (2, 3), (3, 3)]
    for page in pages:  # the page as the model saw it: 640 x 240 pixels at 150 dpi
        assert abs(page.width - 640) <= 1 and abs(page.height - 240) <= 1, page
        assert page.time_ms is not None and page.time_ms > 0 and page.image is None
    done_at = [p.done_at or 0.0 for p in pages]
    assert all(isinstance(p.done_at, float) for p in pages) and done_at == sorted(done_at)
    assert given_at[0] < done_at[-1], (given_at, done_at)  # page 1 came before page 3 was read


def test_options_choose_pages_and_add_page_images(srv: ServerProcess, pdf: Path) -> None:
    with Client(srv.url, timeout=300) as client:
        (page,) = client.predict_pages("ocr", pdf.read_bytes(), pages="2", page_image=True)
        assert (page.number, _text(page)) == (2, "BRAVO")
        assert page.image is not None and page.image.startswith("data:image/jpeg;base64,")
        with pytest.raises(errors.BadRequest, match="pages"):  # a 400 before any page
            list(client.predict_pages("ocr", pdf, pages="3-1"))
        # Leaving after the first page closes the answer; the server answers the next one.
        for page in client.predict_pages("ocr", pdf):
            assert page.number == 1
            break
        assert [p.number for p in client.predict_pages("ocr", pdf, pages="1,3")] == [1, 3]


def test_async_client_streams_the_pages(srv: ServerProcess, pdf: Path) -> None:
    async def run() -> list[tuple[float, Page]]:
        got = []
        async with AsyncClient(srv.url, timeout=300) as client:
            async for page in client.predict_pages("ocr", pdf):
                got.append((time.time(), page))
        return got

    got = asyncio.run(run())
    assert [(p.number, _text(p)) for _, p in got] == list(enumerate(WORDS, 1))
    last_done = got[-1][1].done_at
    assert last_done is not None and got[0][0] < last_done


def test_request_command_reads_only_the_pages_asked(
    srv: ServerProcess, pdf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["request", "ocr", str(pdf), "--url", srv.url, "--pages", "2"]) == 0
    out = [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()]
    assert out == ["--- page 2 ---", "BRAVO"]

    argv = ["request", "ocr", str(pdf), "--url", srv.url, "--format", "json"]
    assert main([*argv, "--option", "page_image=true", "--text-layer", "ocr", "--dpi", "72"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [p["page"] for p in doc["pages"]] == [1, 2, 3]
    assert all(p["image"].startswith("data:image/jpeg;base64,") for p in doc["pages"])
    assert all(abs(p["width"] - 307) <= 1 for p in doc["pages"])  # 640 pixels at 150 dpi

    assert main(["request", "ocr", str(pdf), "--url", srv.url, "--option", "nope=1"]) == 1
    assert "400 BadRequestException: Unknown option 'nope'" in capsys.readouterr().err


def test_request_command_shows_a_bar_of_the_pages(
    srv: ServerProcess, pdf: Path, tmp_path: Path
) -> None:
    command = [sys.executable, "-m", "ocrserve", "request", "ocr", str(pdf), "--url", srv.url]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [*command, "--progress"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"[{'#' * 30}] 3/3 pages" in done.stderr and "0/3 pages" in done.stderr
    lines = [line.split("\t")[0] for line in done.stdout.splitlines()]
    assert lines == ["--- page 1 ---", "ALPHA", "--- page 2 ---", "BRAVO", "--- page 3 ---",
                     "CHARLIE"]  # fmt: skip
    quiet = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )  # not a terminal: no bar
    assert quiet.returncode == 0 and "pages" not in quiet.stderr, quiet.stderr
