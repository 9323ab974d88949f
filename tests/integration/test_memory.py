"""Memory on a real server with the bundled models: a large page does not raise a worker's
floor (read from the server's own ``WorkerMemoryUsed`` metric), and a worker over
``worker_memory_limit`` is replaced between requests without failing any."""

from __future__ import annotations

import io
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageDraw, ImageFont
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ServerProcess, running

REPO = Path(__file__).resolve().parents[2]
DEMO = (REPO / "demo" / "demo_text_det.jpg").read_bytes()
CROP = (REPO / "demo" / "demo_text_recog.jpg").read_bytes()


def _large_page(side: int = 4000) -> bytes:
    """A 16-megapixel page of text (a PNG of about a megabyte): the detector's largest input."""
    img = Image.new("L", (side, side), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=48)
    for k in range(40):
        draw.text((80, 80 + 95 * k), f"line {k}: a large page of text, read whole", font=font)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def worker_memory(srv: ServerProcess, model: str) -> dict[str, float]:
    """``WorkerMemoryUsed`` (MB) of each of ``model``'s workers, from the metrics port."""
    text = httpx.get(f"{srv.metrics_url}/metrics", timeout=30).text
    out = {}
    for family in text_string_to_metric_families(text):
        if family.name == "WorkerMemoryUsed":
            for sample in family.samples:
                name = sample.labels["WorkerName"]
                if name.endswith(f"-{model}_1.0") or f"-{model}_" in name:
                    out[name] = sample.value
    return out


def _read_crop(url: str) -> tuple[int, str]:
    resp = httpx.put(url, content=CROP, timeout=120)
    return resp.status_code, resp.json().get("text", resp.text)


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    yield from running(ServerProcess(tmp_path_factory.mktemp("memory"), "--models", "ocr"))


def test_memory_after_a_large_page_returns_to_where_it_was(srv: ServerProcess) -> None:
    url = f"{srv.url}/predictions/ocr"
    for _ in range(6):  # warm up: the worker's buffers for ordinary pages
        assert httpx.put(url, content=DEMO, timeout=120).status_code == 200
    (before,) = worker_memory(srv, "ocr").values()
    large = httpx.put(url, content=_large_page(), timeout=300)
    assert large.status_code == 200, large.text
    assert len(large.json()["result"]) >= 30  # it was read, not refused
    (peak,) = worker_memory(srv, "ocr").values()
    for _ in range(3):
        assert httpx.put(url, content=DEMO, timeout=120).status_code == 200
    (after,) = worker_memory(srv, "ocr").values()
    print("worker MB before, peak, after:", before, peak, after)
    assert after <= 1.10 * before, (before, peak, after)


def test_a_worker_over_its_memory_limit_is_replaced_and_no_request_fails(
    tmp_path: Path,
) -> None:
    """A limit under what the recognizer's worker holds: it is replaced after every batch,
    while two clients keep sending; every answer is a 200 with the right text."""
    server = ServerProcess(tmp_path, "--models", "ppocr_rec", "--worker-memory-limit", "64")
    for srv in running(server):
        url = f"{srv.url}/predictions/ppocr_rec"
        pids = set()
        with ThreadPoolExecutor(2) as pool:
            for k, answer in enumerate(pool.map(_read_crop, [url] * 10)):
                assert answer == (200, "serving"), (k, answer)
                (desc,) = httpx.get(f"{srv.management_url}/models/ppocr_rec").json()
                pids.update(w["pid"] for w in desc["workers"] if w["pid"] > 0)
        assert len(pids) >= 3, pids  # replaced, again and again
        assert "over worker_memory_limit (64 MB): replacing it" in srv.log()
