"""Shared pieces of the benchmark programs: servers, load, in-process timing, tables, results.

Nothing here imports numpy, torch or ONNX Runtime at module level: the in-process timings run
in a spawned child that limits its threads first, exactly as a worker process does.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from ocrserve.server.launcher import LocalServer, free_port

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
STORE = RESULTS / "store"
SHARED = REPO.parent / "shared"
FIXTURES = SHARED / "fixtures" / "mmocr-0.6.3"
DEMO = REPO / "demo"

#: Fixture models: name -> (task folder, config stem, default image).
FIXTURE_MODELS = {
    "dbnet_r18": ("textdet", "dbnet_r18_fpnc_1200e_icdar2015", "det_1280x720.jpg"),
    "crnn": ("textrecog", "crnn_academic_dataset", "rec_100x32.png"),
}
#: Bundled models -> default image.
BUNDLED_IMAGES = {
    "ppocr_det": DEMO / "demo_text_det.jpg",
    "ppocr_rec": DEMO / "demo_text_recog.jpg",
    "ocr": DEMO / "demo_text_det.jpg",
}


# ----------------------------------------------------------------------------- numbers


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = (len(s) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def timed(fn: Callable[[], object], repeat: int, warmup: int = 0) -> tuple[float, float]:
    """Median and p90 in milliseconds of ``repeat`` calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return percentile(times, 50), percentile(times, 90)


def summary(ms: Sequence[float]) -> dict[str, float]:
    """n, p50, p90, p99 and mean of latencies in milliseconds."""
    n = len(ms)
    mean = sum(ms) / n if n else float("nan")
    return {
        "n": n,
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "mean": mean,
    }


def md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats with 1 decimal unless already formatted."""

    def cell(v: Any) -> str:
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    """What the numbers ran on, and how busy it was (1-minute load average now)."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "onnxruntime": _installed("onnxruntime"),
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _installed(distribution: str) -> str | None:
    """The installed version of ``distribution`` (read from its metadata, not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/NAME.json`` (with the machine) and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=1) + "\n")
    return path


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- models


def fixture_archive(name: str, runtime: str = "torch") -> Path:
    """``benchmarks/results/store/NAME[_onnx].mar`` from the MMOCR fixture (built once)."""
    task, stem, _ = FIXTURE_MODELS[name]
    model_name = name if runtime == "torch" else f"{name}_onnx"
    path = STORE / f"{model_name}.mar"
    if path.is_file():
        return path
    folder = FIXTURES / task / stem
    if not folder.is_dir():
        sys.exit(f"no MMOCR fixture at {folder}")
    cmd = [sys.executable, "-m", "ocrserve", "archive", str(folder / f"{stem}.py")]
    cmd += [str(folder / "checkpoint.pth"), "--output-folder", str(STORE)]
    cmd += ["--model-name", model_name, "--runtime", runtime, "-f"]
    subprocess.run(cmd, check=True, capture_output=True)
    return path


def model_archive(name: str) -> tuple[str, Path]:
    """``(location for --models, default image)`` of a fixture or bundled model."""
    if name in FIXTURE_MODELS:
        return str(fixture_archive(name)), FIXTURES / "images" / FIXTURE_MODELS[name][2]
    if name.endswith("_onnx") and name[:-5] in FIXTURE_MODELS:
        image = FIXTURES / "images" / FIXTURE_MODELS[name[:-5]][2]
        return str(fixture_archive(name[:-5], "onnx")), image
    if name in BUNDLED_IMAGES:
        return name, BUNDLED_IMAGES[name]
    valid = [*FIXTURE_MODELS, *(f"{m}_onnx" for m in FIXTURE_MODELS), *BUNDLED_IMAGES]
    sys.exit(f"unknown model {name!r}; valid: {', '.join(valid)}")


def extracted(location: str) -> Path:
    """An extracted copy of an archive (fixture .mar path or bundled model name)."""
    from ocrserve.archives.bundled import build_bundled_archive
    from ocrserve.archives.mar import extract_archive

    dest = Path(tempfile.mkdtemp(prefix="ocrserve-bench-"))
    path = Path(location)
    if not path.is_file():
        path = build_bundled_archive(location, dest / "mar")
    extract_archive(path, dest / "model")
    return dest / "model"


# ----------------------------------------------------------------------------- in-process


def _inprocess_child(conn: Any, model_dir: str, threads: int, body: bytes, n: int) -> None:
    """Load like a worker does, then time decode + predict (the worker's whole job) ``n`` times."""
    from ocrserve.server import worker
    from ocrserve.settings import InputLimits

    worker.limit_threads(threads)
    worker._import_opencv().setNumThreads(threads)
    from ocrserve.archives.loader import load_predictor

    predictor = load_predictor(model_dir, threads)
    worker.set_torch_threads(threads)
    for _ in range(3):
        worker._answer(predictor, [body], InputLimits())
    total, predict_only = [], []
    from ocrserve.imaging import decode

    for _ in range(n):
        t0 = time.perf_counter()
        image = decode(body, 40_000_000, exif_orientation=predictor.exif_orientation)
        t1 = time.perf_counter()
        predictor.predict([image])
        t2 = time.perf_counter()
        total.append((t2 - t0) * 1000)
        predict_only.append((t2 - t1) * 1000)
    conn.send({"total": total, "predict": predict_only})
    conn.close()


def inprocess_latencies(model_dir: Path, threads: int, body: bytes, n: int) -> dict[str, Any]:
    """Latencies (ms) of ``n`` single-image calls in a fresh process with ``threads`` threads."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_inprocess_child, args=(child, str(model_dir), threads, body, n))
    proc.start()
    child.close()
    out: dict[str, Any] = parent.recv()
    proc.join()
    return out


# ----------------------------------------------------------------------------- load


def load(
    url: str,
    files: Sequence[Path],
    concurrency: int,
    count: int,
    duration: float,
    responses: Path | None = None,
) -> dict[str, Any]:
    """Run `loadgen.py` in its own process; its JSON plus throughput and latency summary."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "loadgen.py"), url, *map(str, files)]
    cmd += ["--concurrency", str(concurrency), "--count", str(count)]
    cmd += ["--duration", str(duration)]
    if responses is not None:
        cmd += ["--responses", str(responses)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    out: dict[str, Any] = json.loads(done.stdout)
    out.update(summary(out["latencies_ms"]))
    out["rps"] = out["ok"] / out["wall_s"] if out["wall_s"] > 0 else 0.0
    out["loadavg"] = round(os.getloadavg()[0], 2)
    return out


# ----------------------------------------------------------------------------- servers


def free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return list(ports)


def tree_rss(pid: int) -> dict[int, int]:
    """RSS in bytes of ``pid`` and all its descendants."""
    out: dict[int, int] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[p] = int(line.split()[1]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


class Server:
    """An HTTP model server started as a subprocess, stopped by `stop`."""

    url: str
    management: str
    proc: subprocess.Popen[bytes]
    started: float
    ready_s: float

    def predictions(self, model: str) -> str:
        return f"{self.url}/predictions/{model}"

    def wait(self, ready: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: {self.tail()}")
            try:
                if ready():
                    self.ready_s = time.monotonic() - self.started
                    return
            except (httpx.HTTPError, ValueError, KeyError, IndexError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout} s: {self.tail()}")

    def tail(self) -> str:
        return ""

    def rss(self) -> dict[int, int]:
        return tree_rss(self.proc.pid)

    def workers(self, model: str) -> list[dict[str, Any]]:
        """The model's workers as describe lists them (TorchServe and ocrserve alike)."""
        info = httpx.get(f"{self.management}/models/{model}", timeout=120).json()[0]
        return list(info["workers"])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Ocrserve(Server):
    """The checkout's ``ocrserve start --foreground`` on free loopback ports, no token auth."""

    name = "ocrserve"

    def __init__(
        self,
        models: Sequence[str],
        *extra: str,
        timeout: float = 180.0,
        python: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """``python``: the interpreter to serve with (another virtual environment's); ``env``:
        variables to set for the server (``XDG_CACHE_HOME`` for the bundled archives' cache)."""
        self.work = Path(tempfile.mkdtemp(prefix="ocrserve-bench-"))
        STORE.mkdir(parents=True, exist_ok=True)
        args = ["--model-store", str(STORE), *(["--models", *models] if models else []), *extra]
        self.server = LocalServer(self.work, *args, pythonpath=REPO, python=python, env=env)
        self.url, self.management = self.server.url, self.server.management_url
        self.proc, self.started = self.server.proc, self.server.started
        try:
            self.server.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        self.ready_s = self.server.ready_s or 0.0

    def stop(self) -> None:
        self.server.stop()

    def describe(self, model: str) -> dict[str, Any]:
        info: dict[str, Any] = httpx.get(f"{self.management}/models/{model}").json()[0]
        return info

    def tail(self) -> str:
        return self.server.log()[-3000:]


class RapidOCRServer(Server):
    """rapidocr 3.10's pipeline behind `benchmarks/peers/rapidocr_server.py` (uvicorn, one
    engine on one worker thread with ``threads`` ONNX Runtime threads), ``params`` passed on."""

    name = "rapidocr"
    model = "rapidocr"

    def __init__(
        self,
        threads: int,
        params: Sequence[str] = (),
        record_shapes: Path | None = None,
        timeout: float = 300.0,
        extra: Sequence[str] = (),
    ) -> None:
        self.url = self.management = f"http://127.0.0.1:{free_port()}"
        self.work = Path(tempfile.mkdtemp(prefix="rapidocr-bench-"))
        cmd = [sys.executable, str(REPO / "benchmarks" / "peers" / "rapidocr_server.py")]
        cmd += ["--port", self.url.rsplit(":", 1)[1], "--threads", str(threads)]
        for p in params:
            cmd += ["--param", p]
        if record_shapes is not None:
            cmd += ["--record-shapes", str(record_shapes)]
        cmd += extra
        self.log_path = self.work / "server.log"
        self.started = time.monotonic()
        with open(self.log_path, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)

        def ready() -> bool:
            return httpx.get(f"{self.url}/ping", timeout=2).status_code == 200

        try:
            self.wait(ready, timeout)
        except BaseException:
            self.stop()
            raise

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


def uptime() -> str:
    """``uptime``'s line (the load averages beside a result)."""
    done = subprocess.run(["uptime"], capture_output=True, text=True)
    return done.stdout.strip()


def torchserve_bin() -> Path | None:
    """TorchServe's launcher: $OCRSERVE_TORCHSERVE, benchmarks/peers/.venv, /work/tsvenv."""
    for candidate in (
        os.environ.get("OCRSERVE_TORCHSERVE"),
        str(REPO / "benchmarks" / "peers" / ".venv" / "bin" / "torchserve"),
        "/work/tsvenv/bin/torchserve",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")


class TorchServe(Server):
    """The real TorchServe 0.12 serving one ``.mar`` through ``ocrserve.torchserve_handler``.

    Matched with one ocrserve worker (``threads`` given): 1 worker, ``OMP_NUM_THREADS=threads``
    (the handler and PyTorch read it), one netty (HTTP) thread and one netty client (backend)
    thread. At TorchServe's defaults (``threads=None``): its default worker count (one per
    core) and thread settings (none: PyTorch's own default). Both: ocrserve's job queue size,
    no system-metrics collector. TMPDIR is private, so its pid file
    (``$TMPDIR/.model_server.pid``) cannot clash with another TorchServe on the machine.
    """

    name = "torchserve"

    def __init__(
        self,
        launcher: Path,
        archive: Path,
        threads: int | None,
        timeout: float = 300.0,
        env: dict[str, str] | None = None,
    ) -> None:
        """``env``: more variables for TorchServe and its workers (``OMP_WAIT_POLICY``, ...)."""
        if shutil.which("java") is None:
            sys.exit("TorchServe needs Java 17 (java is not on PATH)")
        self.launcher = launcher
        self.model = archive.stem
        ports = free_ports(3)
        self.url, self.management, metrics = (f"http://127.0.0.1:{p}" for p in ports)
        self.work = Path(tempfile.mkdtemp(prefix="torchserve-bench-"))
        store = self.work / "store"
        store.mkdir()
        os.symlink(archive, store / archive.name)
        config = self.work / "config.properties"
        matched = (
            "default_workers_per_model=1\nnumber_of_netty_threads=1\nnetty_client_threads=1\n"
            if threads is not None
            else ""
        )
        config.write_text(
            f"inference_address={self.url}\nmanagement_address={self.management}\n"
            f"metrics_address={metrics}\ndisable_token_authorization=true\n"
            f"install_py_dep_per_model=false\n{matched}job_queue_size=100\n"
            "disable_system_metrics=true\nenable_envvars_config=false\n"
        )
        env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARS}
        self.env = {
            **env,
            "PATH": f"{launcher.parent}:{os.environ['PATH']}",
            "LOG_LOCATION": str(self.work / "logs"),
            "METRICS_LOCATION": str(self.work / "logs"),
            "TMPDIR": str(self.work),
        }
        if threads is not None:
            self.env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        self.env.update(env or {})
        cmd = [str(launcher), "--start", "--foreground", "--ncs", "--ts-config", str(config)]
        cmd += ["--model-store", str(store), "--models", archive.name, "--disable-token-auth"]
        self.log_path = self.work / "ts.out"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            cmd,
            cwd=self.work,
            env=self.env,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
        )

        def ready() -> bool:
            info = httpx.get(f"{self.management}/models/{self.model}", timeout=2).json()[0]
            return bool(info["workers"]) and all(w["status"] == "READY" for w in info["workers"])

        try:
            self.wait(ready, timeout)
        except BaseException:
            self.stop()
            raise

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        subprocess.run(
            [str(self.launcher), "--stop"], cwd=self.work, env=self.env, capture_output=True
        )
        super().stop()
