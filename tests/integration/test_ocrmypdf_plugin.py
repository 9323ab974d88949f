"""OCRmyPDF with ocrserve as its OCR engine (``ocrmypdf --plugin ocrserve.ocrmypdf``) on a
2-page scanned PDF made here: through a real server, and in process with the bundled model;
the output is searchable (``pdftotext`` finds the words), and a server's refusal stops
OCRmyPDF with its error."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, ServerProcess
from tests.documents import pdf_of, text_page
from tests.prerequisites import tool_skip_reason

WORDS = ["ALPHA BRAVO", "CHARLIE"]

if importlib.util.find_spec("ocrmypdf") is None:
    pytest.skip(tool_skip_reason("OCRmyPDF", "pip install -e '.[ocrmypdf]'"),
                allow_module_level=True)  # fmt: skip
if shutil.which("pdftotext") is None:
    pytest.skip(tool_skip_reason("poppler's pdftotext", "apt-get install -y poppler-utils"),
                allow_module_level=True)  # fmt: skip


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("ocrmypdf"), "--models", "ocr")
    try:
        server.wait_healthy()
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture
def scan(tmp_path: Path) -> Path:
    path = tmp_path / "in.pdf"
    path.write_bytes(pdf_of([text_page(w) for w in WORDS]))
    return path


def _ocrmypdf(src: Path, out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [sys.executable, "-m", "ocrmypdf", "--plugin", "ocrserve.ocrmypdf", "--jobs", "1",
           *args, str(src), str(out)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=280)


def _text(pdf: Path) -> list[str]:
    done = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_through_a_server(srv: ServerProcess, scan: Path, tmp_path: Path) -> None:
    out, sidecar = tmp_path / "out.pdf", tmp_path / "out.txt"
    done = _ocrmypdf(scan, out, "--ocrserve-url", srv.url, "--output-type", "pdf",
                     "--sidecar", str(sidecar))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _text(out) == " ".join(WORDS).split()
    assert sidecar.read_text().split() == " ".join(WORDS).split()


def test_sandwich_renderer_through_a_server(srv: ServerProcess, scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pdf"
    done = _ocrmypdf(scan, out, "--ocrserve-url", srv.url, "--pdf-renderer", "sandwich",
                     "--output-type", "pdf")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _text(out) == " ".join(WORDS).split()


def test_in_process(scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.pdf"
    done = _ocrmypdf(scan, out)  # OCRmyPDF's default output: PDF/A
    assert done.returncode == 0, done.stderr
    assert _text(out) == " ".join(WORDS).split()


def test_a_server_error_stops_ocrmypdf(srv: ServerProcess, scan: Path, tmp_path: Path) -> None:
    done = _ocrmypdf(scan, tmp_path / "out.pdf", "--ocrserve-url", srv.url,
                     "--ocrserve-model", "nosuch")  # fmt: skip
    assert done.returncode == 7, done.stderr  # OCRmyPDF's child_process_error
    assert "ocrserve" in done.stderr and "Model not found: nosuch" in done.stderr
