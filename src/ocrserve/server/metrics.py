"""The metrics API (TorchServe port 8082): Prometheus text with TorchServe's names and labels.

The families, types, units and label names are those of TorchServe 0.12's default
``ts/configs/metrics.yaml`` in ``metrics_mode=prometheus``, printed as its Java client prints
them: ``# HELP X Torchserve prometheus counter metric with unit: Count``, counters without a
``_total`` suffix added (``Requests2XX``), labels in declaration order. What is recorded when
follows the frontend (``NettyUtils.sendHttpResponse``, ``InferenceRequestHandler``,
``RestJob.response``, ``WorkerThread``) and the Python backend (``HandlerTime``,
``PredictionTime``, ``ts/metrics/system_metrics.py``).

Differences from TorchServe: system metrics are read on each scrape rather than once a minute;
ocrserve adds one family, ``ocrserve_batch_size`` (a histogram of dispatched batch sizes);
families come in declaration order rather than hash order.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import psutil
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ocrserve.server.responses import NO_CACHE_HEADERS

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_VERSION",
    "FAMILIES",
    "MetricFamily",
    "Metrics",
    "metrics_routes",
]

#: The text format TorchServe serves (prometheus_client's CONTENT_TYPE_LATEST is now 1.0.0).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: ``model_version`` when a request names no version, as TorchServe labels it.
DEFAULT_VERSION = "default"

_HOST = ("Level", "Hostname")
_REQUEST = ("model_name", "model_version", "hostname")
_MODEL = ("ModelName", "Level", "Hostname")
_GPU = ("Level", "DeviceId", "Hostname")
_MB = 1024 * 1024
_GB = 1024 * 1024 * 1024


@dataclass(frozen=True)
class MetricFamily:
    """One family of TorchServe's default metrics config."""

    name: str
    kind: Literal["counter", "gauge"]
    unit: str
    labels: tuple[str, ...]

    @property
    def help(self) -> str:
        return f"Torchserve prometheus {self.kind} metric with unit: {self.unit}"


FAMILIES: tuple[MetricFamily, ...] = (
    MetricFamily("Requests2XX", "counter", "Count", _HOST),
    MetricFamily("Requests4XX", "counter", "Count", _HOST),
    MetricFamily("Requests5XX", "counter", "Count", _HOST),
    MetricFamily("ts_inference_requests_total", "counter", "Count", _REQUEST),
    MetricFamily("ts_inference_latency_microseconds", "counter", "Microseconds", _REQUEST),
    MetricFamily("ts_queue_latency_microseconds", "counter", "Microseconds", _REQUEST),
    MetricFamily("QueueTime", "gauge", "Milliseconds", _HOST),
    MetricFamily("WorkerThreadTime", "gauge", "Milliseconds", _HOST),
    MetricFamily("WorkerLoadTime", "gauge", "Milliseconds", ("WorkerName", *_HOST)),
    # ocrserve's: each worker's resident memory after its last batch (TorchServe reports the
    # host's MemoryUsed only, and each worker's memoryUsage in describe).
    MetricFamily("WorkerMemoryUsed", "gauge", "Megabytes", ("WorkerName", *_HOST)),
    MetricFamily("CPUUtilization", "gauge", "Percent", _HOST),
    MetricFamily("MemoryUsed", "gauge", "Megabytes", _HOST),
    MetricFamily("MemoryAvailable", "gauge", "Megabytes", _HOST),
    MetricFamily("MemoryUtilization", "gauge", "Percent", _HOST),
    MetricFamily("DiskUsage", "gauge", "Gigabytes", _HOST),
    MetricFamily("DiskUtilization", "gauge", "Percent", _HOST),
    MetricFamily("DiskAvailable", "gauge", "Gigabytes", _HOST),
    MetricFamily("GPUMemoryUtilization", "gauge", "Percent", _GPU),
    MetricFamily("GPUMemoryUsed", "gauge", "Megabytes", _GPU),
    MetricFamily("GPUUtilization", "gauge", "Percent", _GPU),
    MetricFamily("HandlerTime", "gauge", "ms", _MODEL),
    MetricFamily("PredictionTime", "gauge", "ms", _MODEL),
)

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """TorchServe's metrics in a registry of their own (never prometheus_client's global one).

    Safe to call from the event loop and from worker threads. ``registry`` accepts further
    collectors; `render` prints them too.
    """

    def __init__(self, hostname: str | None = None, disk_path: str = "/", system: bool = True):
        self.hostname = hostname or socket.gethostname()
        self.disk_path = disk_path
        self.system = system
        self.registry = CollectorRegistry()
        self._lock = threading.Lock()
        self._values: dict[str, dict[tuple[str, ...], float]] = {f.name: {} for f in FAMILIES}
        self.registry.register(self)
        self._batch_size = Histogram(
            "ocrserve_batch_size",
            "Requests per batch dispatched to a worker (ocrserve; not in TorchServe)",
            _REQUEST,
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        if system:
            psutil.cpu_percent(None)  # the first call only starts the measuring interval

    # -- what the routes and the engine record ------------------------------------------

    def record_request(
        self,
        model: str | None,
        version: str | None,
        status: int,
        latency_us: float = 0.0,
        queue_us: float = 0.0,
        handler_us: float | None = None,
    ) -> None:
        """One HTTP response on any port. ``model`` is the registered model a prediction
        reached (None for other routes and for unknown models, which TorchServe does not
        count); ``version`` is the one the URL named (None labels it "default")."""
        host = ("Host", self.hostname)
        with self._lock:
            self._add(_status_family(status), host, 1.0)
            if model is None:
                return
            labels = (model, version or DEFAULT_VERSION, self.hostname)
            self._add("ts_inference_requests_total", labels, 1.0)
            if not 200 <= status < 300:
                return  # TorchServe's RestJob adds latencies only for responses it produced
            self._add("ts_inference_latency_microseconds", labels, latency_us)
            self._add("ts_queue_latency_microseconds", labels, queue_us)
            self._set("QueueTime", host, queue_us / 1000)
            if handler_us is not None:
                self._set("HandlerTime", (model, "Model", self.hostname), handler_us / 1000)
                overhead = max(0.0, latency_us - queue_us - handler_us) / 1000
                self._set("WorkerThreadTime", host, overhead)

    def record_worker_load(
        self, model: str, version: str, ms: float, *, worker_id: int | str | None = None
    ) -> None:
        """A worker finished loading; labelled ``W-<id>-<model>_<version>`` as TorchServe."""
        prefix = "W-" if worker_id is None else f"W-{worker_id}-"
        with self._lock:
            self._set("WorkerLoadTime", (f"{prefix}{model}_{version}", "Host", self.hostname), ms)

    def forget_worker(self, model: str, version: str, worker_id: int | str) -> None:
        """A worker is gone: drop its ``WorkerLoadTime`` series (replacements add their own)."""
        labels = (f"W-{worker_id}-{model}_{version}", "Host", self.hostname)
        with self._lock:
            self._values["WorkerLoadTime"].pop(labels, None)
            self._values["WorkerMemoryUsed"].pop(labels, None)

    def record_worker_memory(
        self, model: str, version: str, rss: int, *, worker_id: int | str
    ) -> None:
        """A worker's resident memory (bytes) after a batch, as ``WorkerMemoryUsed`` in MB."""
        labels = (f"W-{worker_id}-{model}_{version}", "Host", self.hostname)
        with self._lock:
            self._set("WorkerMemoryUsed", labels, rss / _MB)

    def record_prediction(
        self, model: str, version: str | None, ms: float, batch_size: int
    ) -> None:
        """A worker ran one batch: ``ms`` is the time of the whole prediction call."""
        with self._lock:
            self._set("PredictionTime", (model, "Model", self.hostname), ms)
        self._batch_size.labels(model, version or DEFAULT_VERSION, self.hostname).observe(
            batch_size
        )

    # -- prometheus_client's collector protocol -------------------------------------------

    def describe(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield Metric(family.name, family.help, family.kind)

    def collect(self) -> Iterator[Metric]:
        if self.system:
            self._read_system()
        with self._lock:
            snapshot = {name: dict(series) for name, series in self._values.items()}
        for family in FAMILIES:
            metric = Metric(family.name, family.help, family.kind)
            for values, value in snapshot[family.name].items():
                metric.add_sample(family.name, dict(zip(family.labels, values)), value)
            yield metric

    # -- exposition ----------------------------------------------------------------------

    def render(self, names: Sequence[str] | None = None) -> bytes:
        """Prometheus text (0.0.4) of every family, or only those named (``name[]=``)."""
        wanted = set(names) if names else None
        return "".join(_family_text(m, wanted) for m in self.registry.collect()).encode()

    # -- internals -----------------------------------------------------------------------

    def _add(self, name: str, labels: tuple[str, ...], amount: float) -> None:
        series = self._values[name]
        series[labels] = series.get(labels, 0.0) + amount

    def _set(self, name: str, labels: tuple[str, ...], value: float) -> None:
        self._values[name][labels] = value

    def _read_system(self) -> None:
        """Host metrics as ``ts/metrics/system_metrics.py`` computes them."""
        host = ("Host", self.hostname)
        readings: dict[str, float] = {"CPUUtilization": psutil.cpu_percent(None)}
        memory = psutil.virtual_memory()
        readings.update(
            MemoryUsed=memory.used / _MB,
            MemoryAvailable=memory.available / _MB,
            MemoryUtilization=memory.percent,
        )
        try:
            disk = psutil.disk_usage(self.disk_path)
        except OSError:
            pass  # a vanished mount: report the rest rather than fail the scrape
        else:
            readings.update(
                DiskUsage=disk.used / _GB,
                DiskUtilization=disk.percent,
                DiskAvailable=disk.free / _GB,
            )
        with self._lock:
            for name, value in readings.items():
                self._set(name, host, float(value))


def _status_family(status: int) -> str:
    # TorchServe counts everything that is neither 2xx nor 4xx as 5XX.
    if 200 <= status < 300:
        return "Requests2XX"
    if 400 <= status < 500:
        return "Requests4XX"
    return "Requests5XX"


def _exposed_name(metric: Metric, samples: Iterable[Sample]) -> str:
    """prometheus_client's own counters keep ``_total`` on samples only; expose it as they do."""
    names = {s.name for s in samples}
    if metric.type == "counter" and names == {metric.name + "_total"}:
        return metric.name + "_total"
    return metric.name


def _family_text(metric: Metric, wanted: set[str] | None) -> str:
    samples = [s for s in metric.samples if s.name != metric.name + "_created"]
    name = _exposed_name(metric, samples)
    if wanted is not None and name not in wanted and not any(s.name in wanted for s in samples):
        return ""
    kind = {"unknown": "untyped", "info": "gauge", "stateset": "gauge"}.get(
        metric.type, metric.type
    )
    doc = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
    lines = [f"# HELP {name} {doc}\n", f"# TYPE {name} {kind}\n"]
    lines.extend(_sample_line(s) for s in samples)
    return "".join(lines)


def _sample_line(sample: Sample) -> str:
    # The Java client TorchServe uses ends the label set with a comma; Prometheus accepts it.
    labels = "".join(f'{key}="{_escape(value)}",' for key, value in sample.labels.items())
    braces = f"{{{labels}}}" if labels else ""
    return f"{sample.name}{braces} {floatToGoString(sample.value)}\n"


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def metrics_routes(metrics: Metrics) -> list[Route]:
    """``GET /metrics[?name[]=...]`` for the metrics port (no token: TorchServe checks none)."""

    async def scrape(request: Request) -> Response:
        body = metrics.render(request.query_params.getlist("name[]") or None)
        headers = {"x-request-id": str(uuid.uuid4()), **NO_CACHE_HEADERS}
        return Response(body, media_type=CONTENT_TYPE, headers=headers)

    return [Route("/metrics", scrape, methods=["GET"])]
