from __future__ import annotations

import re
import threading

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from ocrserve.server.metrics import FAMILIES, Metrics, metrics_routes

SYSTEM = (
    "CPUUtilization",
    "MemoryUsed",
    "MemoryAvailable",
    "MemoryUtilization",
    "DiskUsage",
    "DiskUtilization",
    "DiskAvailable",
)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(hostname="vm", system=False)


def values(metrics: Metrics, names: list[str] | None = None) -> dict[str, dict[str, float]]:
    """{sample line without value: value}, from the text parsed by prometheus_client."""
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(metrics.render(names).decode()):
        series = out.setdefault(family.name, {})
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sample.labels.items())
            series[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def sample(metrics: Metrics, name: str) -> list[str]:
    """The raw sample lines of one family."""
    text = metrics.render([name]).decode()
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_torchserve_families_types_and_help(metrics: Metrics) -> None:
    text = metrics.render().decode()
    for family in FAMILIES:
        assert f"# TYPE {family.name} {family.kind}\n" in text
        assert (
            f"# HELP {family.name} Torchserve prometheus {family.kind} metric "
            f"with unit: {family.unit}\n"
        ) in text
    kinds = {f.name: f.kind for f in FAMILIES}
    for name in ("Requests2XX", "Requests4XX", "Requests5XX", "ts_inference_requests_total"):
        assert kinds[name] == "counter"
    assert kinds["ts_inference_latency_microseconds"] == "counter"
    assert kinds["ts_queue_latency_microseconds"] == "counter"
    for name in (
        "QueueTime",
        "WorkerThreadTime",
        "WorkerLoadTime",
        "HandlerTime",
        "PredictionTime",
    ):
        assert kinds[name] == "gauge"


def test_a_prediction_as_torchserve_prints_it(metrics: Metrics) -> None:
    metrics.record_request("tinyocr", None, 200, 86990.886, 411.367, 64690.0)
    assert sample(metrics, "ts_inference_requests_total") == [
        'ts_inference_requests_total{model_name="tinyocr",model_version="default",'
        'hostname="vm",} 1.0'
    ]
    assert sample(metrics, "ts_inference_latency_microseconds") == [
        'ts_inference_latency_microseconds{model_name="tinyocr",model_version="default",'
        'hostname="vm",} 86990.886'
    ]
    assert sample(metrics, "ts_queue_latency_microseconds") == [
        'ts_queue_latency_microseconds{model_name="tinyocr",model_version="default",'
        'hostname="vm",} 411.367'
    ]
    assert sample(metrics, "Requests2XX") == ['Requests2XX{Level="Host",Hostname="vm",} 1.0']
    assert sample(metrics, "HandlerTime") == [
        'HandlerTime{ModelName="tinyocr",Level="Model",Hostname="vm",} 64.69'
    ]


def test_counters_increase(metrics: Metrics) -> None:
    for latency in (100.0, 250.0, 50.0):
        metrics.record_request("m", "2.0", 200, latency, 10.0)
    got = values(metrics)
    key = "{model_name=m,model_version=2.0,hostname=vm}"
    # prometheus_client's parser files TorchServe's counters under their name less "_total"
    assert got["ts_inference_requests"][f"ts_inference_requests_total{key}"] == 3
    assert got["ts_inference_latency_microseconds"][
        f"ts_inference_latency_microseconds_total{key}"
    ] == pytest.approx(400.0)
    assert got["ts_queue_latency_microseconds"][
        f"ts_queue_latency_microseconds_total{key}"
    ] == pytest.approx(30.0)
    assert got["Requests2XX"]["Requests2XX_total{Level=Host,Hostname=vm}"] == 3


@pytest.mark.parametrize(
    "status,family",
    [(200, "Requests2XX"), (202, "Requests2XX"), (404, "Requests4XX"), (401, "Requests4XX"),
     (500, "Requests5XX"), (503, "Requests5XX"), (302, "Requests5XX")],
)  # fmt: skip
def test_status_classes(metrics: Metrics, status: int, family: str) -> None:
    metrics.record_request(None, None, status)
    assert sample(metrics, family) == [f'{family}{{Level="Host",Hostname="vm",}} 1.0']
    others = {"Requests2XX", "Requests4XX", "Requests5XX"} - {family}
    assert all(sample(metrics, name) == [] for name in others)


def test_non_model_routes_count_only_status(metrics: Metrics) -> None:
    metrics.record_request(None, None, 404, 5.0, 0.0)
    assert sample(metrics, "ts_inference_requests_total") == []
    assert sample(metrics, "ts_inference_latency_microseconds") == []


def test_failed_predictions_count_requests_not_latency(metrics: Metrics) -> None:
    metrics.record_request("m", None, 503, 280000.0, 20.0, 1000.0)
    assert sample(metrics, "ts_inference_requests_total")[0].endswith(" 1.0")
    assert sample(metrics, "ts_inference_latency_microseconds") == []
    assert sample(metrics, "ts_queue_latency_microseconds") == []
    assert sample(metrics, "QueueTime") == []
    assert sample(metrics, "Requests5XX") == ['Requests5XX{Level="Host",Hostname="vm",} 1.0']


def test_versions_are_separate_series(metrics: Metrics) -> None:
    metrics.record_request("m", None, 200, 1.0, 0.0)
    metrics.record_request("m", "1.0", 200, 1.0, 0.0)
    metrics.record_request("m", "1.0", 200, 1.0, 0.0)
    got = values(metrics)["ts_inference_requests"]
    assert got["ts_inference_requests_total{model_name=m,model_version=default,hostname=vm}"] == 1
    assert got["ts_inference_requests_total{model_name=m,model_version=1.0,hostname=vm}"] == 2


def test_gauges_hold_the_last_value_in_ms(metrics: Metrics) -> None:
    metrics.record_request("m", None, 200, 10_000.0, 2_000.0, 5_000.0)
    metrics.record_request("m", None, 200, 20_000.0, 4_000.0, 6_000.0)
    assert sample(metrics, "QueueTime") == ['QueueTime{Level="Host",Hostname="vm",} 4.0']
    assert sample(metrics, "HandlerTime")[0].endswith(" 6.0")
    # the time in the serving path that neither queue nor handler account for
    assert sample(metrics, "WorkerThreadTime") == [
        'WorkerThreadTime{Level="Host",Hostname="vm",} 10.0'
    ]


def test_worker_load_and_prediction(metrics: Metrics) -> None:
    metrics.record_worker_load("tinyocr", "1.0", 8063.0, worker_id=9000)
    metrics.record_worker_load("tinyocr", "1.0", 8495.0, worker_id=9001)
    metrics.record_prediction("tinyocr", "1.0", 66.58, batch_size=3)
    metrics.record_prediction("tinyocr", "1.0", 12.5, batch_size=5)
    assert sample(metrics, "WorkerLoadTime") == [
        'WorkerLoadTime{WorkerName="W-9000-tinyocr_1.0",Level="Host",Hostname="vm",} 8063.0',
        'WorkerLoadTime{WorkerName="W-9001-tinyocr_1.0",Level="Host",Hostname="vm",} 8495.0',
    ]
    assert sample(metrics, "PredictionTime") == [
        'PredictionTime{ModelName="tinyocr",Level="Model",Hostname="vm",} 12.5'
    ]
    batch = values(metrics, ["ocrserve_batch_size"])["ocrserve_batch_size"]
    labels = "model_name=tinyocr,model_version=1.0,hostname=vm"
    assert batch[f"ocrserve_batch_size_count{{{labels}}}"] == 2
    assert batch[f"ocrserve_batch_size_sum{{{labels}}}"] == 8
    assert batch[f"ocrserve_batch_size_bucket{{{labels},le=4.0}}"] == 1
    assert not any("_created" in line for line in metrics.render().decode().splitlines())


def test_filtering_selects_families(metrics: Metrics) -> None:
    metrics.record_request("m", None, 200, 1.0, 1.0)
    text = metrics.render(["ts_inference_requests_total", "ts_queue_latency_microseconds"])
    families = re.findall(r"^# TYPE (\S+)", text.decode(), re.M)
    assert families == ["ts_inference_requests_total", "ts_queue_latency_microseconds"]
    assert metrics.render(["nosuchmetric"]) == b""
    assert metrics.render([]) == metrics.render(None)
    metrics.record_prediction("m", None, 1.0, 2)  # a sample name selects its family
    assert b"# TYPE ocrserve_batch_size histogram" in metrics.render(["ocrserve_batch_size_count"])


def test_whole_text_parses(metrics: Metrics) -> None:
    metrics.record_request('we"ird\\name', None, 200, 1.0, 1.0, 1.0)
    metrics.record_worker_load("m", "1.0", 1.0)
    metrics.record_prediction("m", None, 1.0, 1)
    names = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert "HandlerTime" in names and "ocrserve_batch_size" in names
    got = values(metrics, ["HandlerTime"])["HandlerTime"]
    assert got == {'HandlerTime{ModelName=we"ird\\name,Level=Model,Hostname=vm}': 0.001}


def test_system_metrics_refresh_on_scrape() -> None:
    metrics = Metrics(hostname="vm")
    got = values(metrics, list(SYSTEM))
    assert set(got) == set(SYSTEM)
    for name in SYSTEM:
        ((line, value),) = got[name].items()
        assert line == f"{name}{{Level=Host,Hostname=vm}}" and value >= 0
    assert 0 <= got["MemoryUtilization"]["MemoryUtilization{Level=Host,Hostname=vm}"] <= 100


def test_system_metrics_survive_a_missing_disk() -> None:
    metrics = Metrics(hostname="vm", disk_path="/no/such/mount")
    got = values(metrics)
    assert got["DiskUsage"] == {} and got["MemoryUsed"]


def test_own_registry_never_the_global_one() -> None:
    first, second = Metrics(system=False), Metrics(system=False)  # no duplicate-name clash
    assert first.registry is not prometheus_client.REGISTRY
    assert first.registry is not second.registry
    assert prometheus_client.REGISTRY.get_sample_value("Requests2XX", {}) is None


def test_collectors_added_to_the_registry_render_too(metrics: Metrics) -> None:
    extra = prometheus_client.Counter("extra_events", "x", registry=metrics.registry)
    extra.inc(2)
    assert sample(metrics, "extra_events_total") == ["extra_events_total 2.0"]
    assert b"# TYPE extra_events_total counter" in metrics.render()


def test_thread_safe_counting(metrics: Metrics) -> None:
    def spin() -> None:
        for _ in range(1000):
            metrics.record_request("m", None, 200, 1.0, 1.0)

    threads = [threading.Thread(target=spin) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sample(metrics, "Requests2XX") == ['Requests2XX{Level="Host",Hostname="vm",} 8000.0']


def test_route(metrics: Metrics) -> None:
    metrics.record_request("m", None, 200, 1.0, 1.0)
    client = TestClient(Starlette(routes=metrics_routes(metrics)))
    response = client.get(
        "/metrics",
        params=[("name[]", "ts_inference_requests_total"), ("name[]", "Requests2XX")],
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache; no-store, must-revalidate, private"
    assert "x-request-id" in response.headers
    assert re.findall(r"^# TYPE (\S+)", response.text, re.M) == [
        "Requests2XX",
        "ts_inference_requests_total",
    ]
    assert client.get("/metrics?name[]=nosuchmetric").content == b""
    assert "# TYPE CPUUtilization gauge" in client.get("/metrics").text
    assert client.post("/metrics").status_code == 405
