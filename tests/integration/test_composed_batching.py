"""A composed end-to-end model on a real server reads a page of 100 text lines in at most
ceil(100 / rec_batch) recognizer calls, counted inside the server's worker.

The count comes from a probe that the worker imports at start-up (a ``sitecustomize`` module
on the server's ``PYTHONPATH``, this test's only): it wraps the function through which
`ComposedEndToEnd` calls its parts and writes the number of crops of every recognizer call to
a file. Nothing of the server is changed for the test; only the worker's Python is watched.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from ocrserve.archives.bundled import build_bundled_archive
from tests.conftest import ServerProcess, running
from tests.integration.test_ppocr_archives import _ocrserve
from tests.unit.compose.test_end_to_end import text_page

REC_BATCH = 8

PROBE = """
import os

_calls = os.environ.get("OCRSERVE_TEST_REC_CALLS")
if _calls:
    import ocrserve.compose.end_to_end as _e2e

    _predict_with = _e2e.predict_with

    def _counted(predictor, images, options=None):
        if predictor.task == "textrecog":
            with open(_calls, "a") as out:
                out.write(f"{len(images)}\\n")
        return _predict_with(predictor, images, options)

    _e2e.predict_with = _counted
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("batching")
    parts, store, probe = tmp / "parts", tmp / "store", tmp / "probe"
    for name in ("ppocr_det", "ppocr_rec"):
        build_bundled_archive(name, parts)
    res = _ocrserve("compose", "--det", str(parts / "ppocr_det.mar"), "--rec",
                    str(parts / "ppocr_rec.mar"), "--output-folder", str(store), "--model-name",
                    "page", "--rec-batch", str(REC_BATCH))  # fmt: skip
    assert res.returncode == 0, res.stderr
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(PROBE)
    calls = tmp / "calls.txt"
    env = {"PYTHONPATH": str(probe), "OCRSERVE_TEST_REC_CALLS": str(calls)}
    srv = ServerProcess(tmp, "--model-store", str(store), "--models", "page.mar", env=env)
    for started in running(srv):
        yield started, calls


def test_a_page_of_100_lines_takes_ceil_100_over_batch_recognizer_calls(served) -> None:  # type: ignore[no-untyped-def]
    srv, calls = served
    image, texts = text_page(100, columns=2)
    body = io.BytesIO()
    Image.fromarray(image[:, :, ::-1]).save(body, "PNG")
    calls.write_text("")  # only this request's calls
    resp = httpx.put(f"{srv.url}/predictions/page", content=body.getvalue(), timeout=300)
    assert resp.status_code == 200, resp.text
    lines = resp.json()["result"]
    assert len(lines) >= 95, f"{len(lines)} of 100 lines found"
    assert sum(line["text"] in texts for line in lines) >= 90
    sizes = [int(n) for n in calls.read_text().split()]
    assert sizes, "the probe saw no recognizer call in the worker"
    assert sum(sizes) == len(lines) and max(sizes) <= REC_BATCH
    assert len(sizes) == math.ceil(len(lines) / REC_BATCH) <= math.ceil(100 / REC_BATCH)
