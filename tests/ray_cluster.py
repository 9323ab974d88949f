"""A real two-node Ray cluster on loopback, for the ``--engine ray`` tests.

The head and a second node are each a ``ray start --block`` process of their own (the second
with its own CPUs and a custom resource ``ocrserve_node2``), in a temporary folder, on ports
that were free a moment ago, so the tests never touch another Ray cluster of this machine.
``ray stop`` is never used: it stops every Ray of the machine. `stop_node` stops one node's
Ray (gracefully: SIGTERM drains it); `stop` ends every process the cluster started, by pid.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.prerequisites import tool_skip_reason

__all__ = ["RAY_SKIP_REASON", "RayCluster", "ray_installed"]

RAY_SKIP_REASON = tool_skip_reason("Ray", "pip install -e '.[ray]'")
#: CPUs of the head and of the second node (the machine has few: replicas reserve 0.25).
HEAD_CPUS, NODE2_CPUS = 2, 1
REPLICA_CPUS = "0.25"


def free_port() -> int:
    """A port from the kernel's ephemeral range (``bind(0)``), for Ray's own services: the
    servers' ports (`ocrserve.server.launcher.free_port`) are picked below that range."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_installed() -> bool:
    """Ray with Serve, found without importing it (the test process stays Ray-free)."""
    spec = importlib.util.find_spec("ray")
    return bool(spec and spec.submodule_search_locations) and any(
        (Path(p) / "serve" / "__init__.py").is_file() for p in spec.submodule_search_locations
    )


def _ray() -> str:
    return str(Path(sys.executable).with_name("ray"))


class RayCluster:
    """``ray start`` for a head and (``nodes=2``) one more node, and the means to stop either."""

    def __init__(
        self, nodes: int = 2, dashboard: bool = False, env: dict[str, str] | None = None,
        head_cpus: int = HEAD_CPUS,
    ) -> None:  # fmt: skip
        """``dashboard``: with the dashboard and its Serve REST API (``serve deploy``, what
        KubeRay uses), at `dashboard_url`; ``env``: more variables for every Ray process;
        ``head_cpus``: the CPUs the head offers."""
        self.tmp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: socket paths
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.client_port = free_port()
        #: The cluster as a Ray Client (``ray://``) sees it.
        self.client_address = f"ray://127.0.0.1:{self.client_port}"
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
        self.env.pop("RAY_ADDRESS", None)
        dashboard_port = free_port()
        self.dashboard_url = f"http://127.0.0.1:{dashboard_port}"
        self.head = self._start(
            "--head", f"--port={self.port}", f"--num-cpus={head_cpus}",
            f"--temp-dir={self.tmp}", f"--ray-client-server-port={self.client_port}",
            f"--dashboard-port={dashboard_port}", "--dashboard-host=127.0.0.1",
            f"--include-dashboard={str(dashboard).lower()}", name="head",
        )  # fmt: skip
        self.node2: subprocess.Popen[bytes] | None = None
        try:
            self.wait_nodes(1)
            if nodes > 1:
                self.start_node2()
        except BaseException:
            self.stop()
            raise

    def _start(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
        cmd = [
            _ray(), "start", "--block", "--node-ip-address=127.0.0.1", *args,
            "--object-store-memory=150000000", "--disable-usage-stats",
            # Workers on ports the kernel gives: Ray's default range (10002-19999) is where
            # the servers of the tests pick theirs.
            "--min-worker-port=0", "--max-worker-port=0",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--dashboard-agent-grpc-port={free_port()}",
            f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
        ]  # fmt: skip
        return subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def start_node2(self) -> None:
        """(Re)start the second node: its own CPUs and the resource ``ocrserve_node2``."""
        self.node2 = self._start(
            f"--address={self.address}", f"--num-cpus={NODE2_CPUS}",
            '--resources={"ocrserve_node2": 1}', name="node2",
        )  # fmt: skip
        self.wait_nodes(2)

    def nodes(self) -> list[dict[str, object]]:
        """The live nodes, as ``ray list nodes`` would say (read from a short-lived driver)."""
        code = (
            f"import json, ray; ray.init(address={self.address!r}, log_to_driver=False, "
            "logging_level='ERROR'); print(json.dumps([{'id': n['NodeID'], 'resources': "
            "n['Resources']} for n in ray.nodes() if n['Alive']]))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], env=self.env, capture_output=True, timeout=60
        )
        import json

        lines = out.stdout.decode().strip().splitlines()
        return list(json.loads(lines[-1])) if out.returncode == 0 and lines else []

    def wait_nodes(self, count: int, timeout: float = 90) -> list[dict[str, object]]:
        deadline = time.monotonic() + timeout
        while True:
            for proc in (self.head, self.node2):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"ray start exited: see {self.tmp}/*.log")
            nodes = self.nodes()
            if len(nodes) == count:
                return nodes
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(nodes)} Ray node(s), expected {count} ({self.tmp})")
            time.sleep(1)

    def node2_id(self) -> str:
        return next(
            str(n["id"])
            for n in self.nodes()
            if "ocrserve_node2" in n["resources"]  # type: ignore[operator]
        )

    def stop_node(self, proc: subprocess.Popen[bytes] | None, grace: float = 40) -> None:
        """Stop one node's Ray: SIGTERM (it drains), then SIGKILL whatever it started."""
        if proc is None:
            return
        family = _family(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _kill(family)
        proc.wait(10)

    def stop_node2(self) -> None:
        self.stop_node(self.node2)
        self.node2 = None

    def stop(self) -> None:
        """End the whole cluster at once (no draining), then remove its folder."""
        procs = [p for p in (self.node2, self.head) if p is not None]
        family = [c for p in procs for c in _family(p.pid)]
        _kill(family)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


def _family(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (what one ``ray start`` started)."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _kill(procs: list[psutil.Process]) -> None:
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=10)
