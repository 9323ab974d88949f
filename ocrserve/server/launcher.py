"""A real ocrserve server in a subprocess, on free loopback ports: for tests, benchmarks and tools.

``ocrserve start --foreground``, launched as the CLI launches it (`server_command`), runs with the
three APIs on ports that were free a moment ago, its pid file and logs in a work folder, and its
output in ``server.log`` there. `wait_healthy` waits for ``/ping``; `stop` sends SIGTERM (the
server's graceful stop) and returns the exit code. Nothing here imports more than the standard
library, httpx and ocrserve's settings.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import httpx

from ocrserve.server.instance import server_command

__all__ = ["LocalServer", "free_port"]


def free_port() -> int:
    """A loopback port that was free a moment ago."""
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
        ports: set[int] = set()
        while len(ports) < 3:
            ports.add(free_port())
        self.port, management, metrics = ports
        self.url = f"http://127.0.0.1:{self.port}"
        self.management_url = f"http://127.0.0.1:{management}"
        self.metrics_url = f"http://127.0.0.1:{metrics}"
        self.workdir = work
        self.cwd = Path(cwd) if cwd is not None else work
        self.pid_file = work / "ocrserve.pid"
        self.log_path = work / "server.log"
        self.args = server_command(
            "start", "--foreground", "--inference-address", self.url,
            "--management-address", self.management_url, "--metrics-address", self.metrics_url,
            "--pid-file", str(self.pid_file), "--log-location", str(work / "logs"),
            *([] if auth else ["--disable-token-auth"]), *args,
        )  # fmt: skip
        if python is not None:
            self.args[0] = str(python)
        environ = {**os.environ, **(env or {})}
        if pythonpath is not None:
            paths = (str(pythonpath), environ.get("PYTHONPATH"))
            environ["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.started = time.monotonic()
        #: Seconds from the start until ``/ping`` first answered as asked (`wait_healthy`).
        self.ready_s: float | None = None
        self.proc = subprocess.Popen(
            self.args, stdout=self._log, stderr=subprocess.STDOUT, env=environ, cwd=self.cwd
        )

    def wait_healthy(self, timeout: float = 90.0, *, healthy: bool = True) -> None:
        """Wait until ``/ping`` says Healthy (or, with ``healthy=False``, answers at all).

        `RuntimeError` with the server's log when it exits first or the time runs out.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
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
