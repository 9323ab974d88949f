"""The metrics API (port 8082): Prometheus text with TorchServe's names and labels.

Compared with the ``metrics_mode=prometheus`` part of TorchServe 0.12's transcript
(``../shared/reference/torchserve/transcript.md``).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ocrserve.server.metrics import FAMILIES
from tests.conftest import DEMO, ENGINES, ServerProcess, engine_args, running

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HOST = socket.gethostname()

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module", params=ENGINES)
def srv(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Served by each engine in turn (the metrics API's conformance for Ray)."""
    server = ServerProcess(
        tmp_path_factory.mktemp("metrics"), "--models", "ppocr_rec", "--enable-model-api",
        *engine_args(request),
    )  # fmt: skip
    yield from running(server)


def _scrape(srv: ServerProcess, query: str = "") -> str:
    resp = httpx.get(srv.metrics_url + "/metrics" + query)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == CONTENT_TYPE
    assert resp.headers["x-request-id"] and resp.headers["cache-control"].startswith("no-cache")
    return resp.text


def _samples(text: str) -> Samples:
    """Sample values by name and labels. The parser names every counter sample ``X_total``
    (``Requests2XX`` becomes ``Requests2XX_total``); keys drop that suffix."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name.removesuffix("_total"), tuple(sorted(s.labels.items())))] = s.value
    return out


def _key(name: str, labels: dict[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name.removesuffix("_total"), tuple(sorted(labels.items()))


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get(_key(name, labels), 0.0)


def _host(samples: Samples, name: str) -> float:
    return _value(samples, name, Level="Host", Hostname=HOST)


def _request_labels(model: str, version: str = "default") -> dict[str, str]:
    return {"model_name": model, "model_version": version, "hostname": HOST}


def test_every_torchserve_family_parses(srv: ServerProcess) -> None:
    httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
    text = _scrape(srv)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for expected in FAMILIES:
        # The parser strips a counter's _total suffix from the family name.
        name = expected.name.removesuffix("_total") if expected.kind == "counter" else expected.name
        assert name in families, expected.name
        assert families[name].type == expected.kind
        assert (
            f"# HELP {expected.name} Torchserve prometheus {expected.kind} metric with unit: "
            f"{expected.unit}\n" in text
        )
    for name in ("CPUUtilization", "MemoryUsed", "MemoryAvailable", "DiskUsage"):
        assert _host(_samples(text), name) > 0, name
    # TorchServe's Java client ends each label set with a comma.
    assert re.search(r'^Requests2XX\{Level="Host",Hostname="[^"]+",\} \d+\.\d+$', text, re.M)


def test_predictions_count_and_time(srv: ServerProcess) -> None:
    before = _samples(_scrape(srv))
    for path in ("/predictions/ppocr_rec", "/predictions/ppocr_rec", "/predictions/ppocr_rec/1.0"):
        resp = httpx.put(srv.url + path, content=REC_IMG, timeout=60)
        assert resp.status_code == 200 and resp.json()["text"] == REC_TEXT
    after = _samples(_scrape(srv))
    default, explicit = _request_labels("ppocr_rec"), _request_labels("ppocr_rec", "1.0")
    for labels, count in ((default, 2), (explicit, 1)):
        delta = _value(after, "ts_inference_requests_total", **labels) - _value(
            before, "ts_inference_requests_total", **labels
        )
        assert delta == count, labels
        for name in ("ts_inference_latency_microseconds", "ts_queue_latency_microseconds"):
            assert _value(after, name, **labels) > _value(before, name, **labels), (name, labels)
    # A request takes at least the model's time: more than 100 µs, less than a minute.
    latency = _value(after, "ts_inference_latency_microseconds", **explicit) - _value(
        before, "ts_inference_latency_microseconds", **explicit
    )
    assert 100 < latency < 60e6
    assert _host(after, "Requests2XX") - _host(before, "Requests2XX") >= 3
    model = {"ModelName": "ppocr_rec", "Level": "Model", "Hostname": HOST}
    assert _value(after, "HandlerTime", **model) > 0
    assert _value(after, "PredictionTime", **model) > 0
    assert _key("QueueTime", {"Level": "Host", "Hostname": HOST}) in after


def test_error_statuses_are_counted(srv: ServerProcess) -> None:
    before = _samples(_scrape(srv))
    assert httpx.put(srv.url + "/predictions/ppocr_rec", content=b"").status_code == 400
    assert httpx.put(srv.url + "/predictions/nosuchmodel", content=REC_IMG).status_code == 404
    # A model without workers answers 503.
    mgmt = srv.management_url
    assert httpx.post(mgmt + "/models?url=ppocr_rec.mar&model_name=idle").status_code == 200
    try:
        assert httpx.put(srv.url + "/predictions/idle", content=REC_IMG).status_code == 503
    finally:
        assert httpx.delete(mgmt + "/models/idle").status_code == 200
    after = _samples(_scrape(srv))
    assert _host(after, "Requests4XX") - _host(before, "Requests4XX") == 2
    assert _host(after, "Requests5XX") - _host(before, "Requests5XX") == 1
    # Requests that reached a registered model count; failed ones add no latency (TorchServe).
    idle = _request_labels("idle")
    assert _value(after, "ts_inference_requests_total", **idle) == 1
    assert _key("ts_inference_latency_microseconds", idle) not in after
    assert _value(after, "ts_inference_requests_total", **_request_labels("nosuchmodel")) == 0


def test_worker_load_time_names_the_worker(srv: ServerProcess) -> None:
    (desc,) = httpx.get(srv.management_url + "/models/ppocr_rec").json()
    (worker,) = desc["workers"]
    loads = {
        labels: value
        for (name, labels), value in _samples(_scrape(srv)).items()
        if name == "WorkerLoadTime"
    }
    names = [dict(labels)["WorkerName"] for labels in loads]
    assert all(v > 0 for v in loads.values())
    # TorchServe: "W-9000-tinyocr_1.0", the id describe shows for that worker.
    assert f"W-{worker['id']}-ppocr_rec_1.0" in names, (names, worker["id"])


def test_name_filter(srv: ServerProcess) -> None:
    httpx.put(srv.url + "/predictions/ppocr_rec", content=REC_IMG, timeout=60)
    text = _scrape(srv, "?name[]=ts_inference_requests_total&name[]=ts_queue_latency_microseconds")
    names = {f.name for f in text_string_to_metric_families(text)}
    assert names == {"ts_inference_requests", "ts_queue_latency_microseconds"}
    text = _scrape(srv, "?name[]=ts_inference_latency_microseconds")
    assert re.findall(r"^# TYPE (\S+)", text, re.M) == ["ts_inference_latency_microseconds"]
    text = _scrape(srv, "?name[]=ocrserve_batch_size")
    assert {f.name for f in text_string_to_metric_families(text)} == {"ocrserve_batch_size"}
    assert _scrape(srv, "?name[]=nosuchmetric") == ""


def test_metrics_route_only_on_the_metrics_port(srv: ServerProcess) -> None:
    for url in (srv.url + "/metrics", srv.management_url + "/metrics", srv.metrics_url + "/other"):
        resp = httpx.get(url)
        assert resp.status_code == 404 and resp.headers["content-type"] == "application/json"
        assert resp.json() == {
            "code": 404,
            "type": "ResourceNotFoundException",
            "message": "Requested resource is not found, please refer to API document.",
        }


@pytest.mark.parametrize("engine", ENGINES)
def test_metrics_mode_log_serves_an_empty_page(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> None:
    """``metrics_mode=log`` from config.properties; TS_* variables are ignored unless
    ``enable_envvars_config`` is on."""
    store = tmp_path / "store"
    store.mkdir()
    config = tmp_path / "config.properties"
    config.write_text(f"metrics_mode=log\nmodel_store={store}\n")
    server = ServerProcess(
        tmp_path, "--ts-config", str(config), *engine_args(request, engine),
        env={"TS_METRICS_MODE": "prometheus"},
    )  # fmt: skip
    try:
        server.wait_healthy()
        for query in ("", "?name[]=ts_inference_requests_total"):
            resp = httpx.get(server.metrics_url + "/metrics" + query)
            assert resp.status_code == 200 and resp.content == b""
            assert resp.headers["content-type"].startswith("text/plain")
    finally:
        assert server.stop() == 0
