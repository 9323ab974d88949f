"""A real ocrserve server in a subprocess, on free loopback ports: for tests, benchmarks and tools.

``ocrserve start --foreground``, launched as the CLI launches it (`server_command`), runs with the
three APIs on ports that were free a moment ago, its pid file and logs in a work folder, and its
output in ``server.log`` there. `wait_healthy` waits for ``/ping``; `stop` sends SIGTERM (the
server's graceful stop) and returns the exit code. Nothing here imports more than the standard
library, httpx and ocrserve's settings.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from ocrserve.server.instance import server_command

__all__ = ["LocalServer", "free_port"]


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands out to outgoing connections and to ``bind(0)``."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(v) for v in f.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A loopback port that was free a moment ago.

    Picked at random below the kernel's ephemeral range where possible, so that neither an
    outgoing connection nor another ``bind(0)`` is handed the same port before the server
    binds it (the port of ``bind(0)`` is the next one the kernel gives away).
    """
    low, _ = _ephemeral_range()
    for _ in range(50):
        port = random.randint(10000, low - 1) if low > 10001 else 0
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalServer:
    """``ocrserve start --foreground *args`` on free loopback ports, started at once.

    ``workdir`` holds the pid file, ``logs/`` and ``server.log`` and is the server's working
    directory unless ``cwd`` says otherwise (its ``key_file.json`` goes there). Token
    authorization is off unless ``auth``. ``pythonpath`` is put in front of ``PYTHONPATH``, so a
    checkout runs its own code. ``python`` is the interpreter to run it with (another virtual
    environment's), this one's by default.
    """

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *args: str,
        auth: bool = False,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        pythonpath: str | os.PathLike[str] | None = None,
        python: str | os.PathLike[str] | None = None,
    ) -> None:
        work = Path(workdir)
        work.mkdir(parents=True, exist_ok=True)
        self.workdir = work
        self.cwd = Path(cwd) if cwd is not None else work
        self.pid_file = work / "ocrserve.pid"
        self.log_path = work / "server.log"
        self._extra, self._auth, self._python = args, auth, python
        environ = {**os.environ, **(env or {})}
        if pythonpath is not None:
            paths = (str(pythonpath), environ.get("PYTHONPATH"))
            environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self._environ = environ
        #: Times the server was started again because another process took a port first.
        self.port_retries = 0
        #: Seconds from the start until ``/ping`` first answered as asked (`wait_healthy`).
        self.ready_s: float | None = None
        self._spawn()

    def _spawn(self) -> None:
        """Start the server on three ports that are free now."""
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.port, management, metrics = ports
        self.url = f"http://127.0.0.1:{self.port}"
        self.management_url = f"http://127.0.0.1:{management}"
        self.metrics_url = f"http://127.0.0.1:{metrics}"
        work = self.workdir
        self.args = server_command(
            "start", "--foreground", "--inference-address", self.url,
            "--management-address", self.management_url, "--metrics-address", self.metrics_url,
            "--pid-file", str(self.pid_file), "--log-location", str(work / "logs"),
            *([] if self._auth else ["--disable-token-auth"]), *self._extra,
        )  # fmt: skip
        if self._python is not None:
            self.args[0] = str(self._python)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=self._environ, cwd=self.cwd
        )

    def _lost_a_port(self) -> bool:
        """Whether the server exited because another process bound one of its ports first."""
        return "address already in use" in self.log().lower() and self.port_retries < 3

    def wait_healthy(self, timeout: float = 90.0, *, healthy: bool = True) -> None:
        """Wait until ``/ping`` says Healthy (or, with ``healthy=False``, answers at all).

        `RuntimeError` with the server's log when it exits first or the time runs out.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if self._lost_a_port():  # the race between free_port() and the bind
                    self._log.close()
                    self.port_retries += 1
                    self._spawn()
                    continue
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                status = httpx.get(self.url + "/ping", timeout=2).status_code
                if status == 200 or not healthy:
                    self.ready_s = time.monotonic() - self.started
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not healthy in {timeout} s:\n{self.log()}")

    def wait_log(self, text: str, timeout: float = 90.0) -> str:
        """Wait until the server's output contains ``text``; the output so far."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"{text!r} not logged:\n{self.log()}")
            time.sleep(0.2)
        return self.log()

    def log(self) -> str:
        """Everything the server printed so far."""
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; the exit code."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return int(self.proc.returncode)

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
