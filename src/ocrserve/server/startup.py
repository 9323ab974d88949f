"""What a background ``ocrserve start`` watches while the server loads its models.

`StartupWatch.poll` asks the server, over its own APIs, how far it is: ``/ping`` (Healthy: done),
then the management API's list and describe: per model ``status`` (Healthy/Unhealthy),
``loadFailed`` with its ``loadError``, ``rayPending`` (what its Ray replicas wait for), and 503
for a model whose archive could not be prepared (the engine's failures).
A model that reports a load error has failed for good as far as a start is concerned: the start
stops the server and says why instead of waiting for the startup timeout.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from ocrserve.server.auth import KEY_ENV
from ocrserve.settings import Settings, parse_address

__all__ = ["StartupState", "StartupWatch"]


@dataclass
class StartupState:
    """One look at a starting server."""

    healthy: bool = False
    #: Models with a live worker, in the order they were asked for.
    ready: list[str] = field(default_factory=list)
    #: Models still loading.
    loading: list[str] = field(default_factory=list)
    #: Models that failed for good: name -> the server's reason.
    failed: dict[str, str] = field(default_factory=dict)
    #: Loading models whose replicas wait for room on a Ray cluster: name -> for what.
    pending: dict[str, str] = field(default_factory=dict)

    def progress(self) -> str:
        """``loading: 2/3 models ready (ppocr_det, ocr); waiting for ppocr_rec``, and what a
        model's Ray replicas wait for: ``(ppocr_rec: 1 replica waits for a Ray node ...)``."""
        total = len(self.ready) + len(self.loading) + len(self.failed)
        line = f"loading: {len(self.ready)}/{total} models ready"
        if self.ready:
            line += f" ({', '.join(self.ready)})"
        if self.loading:
            line += f"; waiting for {', '.join(self.loading)}"
        for name, why in self.pending.items():
            line += f" ({name}: {why})"
        return line


def _url(address: str, key: str) -> str:
    host, port = parse_address(key, address)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class StartupWatch:
    """Polls a server started with ``settings`` from this folder, expecting ``models``."""

    def __init__(
        self,
        settings: Settings,
        models: Iterable[str],
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.inference = _url(settings.inference_address, "inference_address")
        self.management = _url(settings.management_address, "management_address")
        self.expected = list(dict.fromkeys(models))
        self.auth = not settings.disable_token_authorization
        self.key_file: Path = settings.key_path()
        env = os.environ if environ is None else environ
        self.supplied_key = env.get(KEY_ENV["management"]) or None
        self.client = httpx.Client(timeout=2.0)

    def close(self) -> None:
        self.client.close()

    def _headers(self) -> dict[str, str] | None:
        """The management key, or None while the server has not written its key file."""
        if not self.auth:
            return {}
        key = self.supplied_key
        if key is None:
            import json

            try:
                key = json.loads(self.key_file.read_text())["management"]["key"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
        return {"Authorization": f"Bearer {key}"}

    def poll(self) -> StartupState:
        state = StartupState()
        try:
            state.healthy = self.client.get(self.inference + "/ping").status_code == 200
        except httpx.HTTPError:
            state.loading = list(self.expected)
            return state
        names = list(self.expected)
        headers = self._headers()
        if headers is None:
            state.loading = names
            return state
        try:
            listed = self.client.get(self.management + "/models?limit=1000", headers=headers)
            if listed.status_code == 200:
                names += [m["modelName"] for m in listed.json().get("models", [])]
            for name in dict.fromkeys(names):
                self._describe(name, headers, state)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
            state.ready, state.failed, state.loading = [], {}, list(self.expected)
            state.pending = {}
        return state

    def _describe(self, name: str, headers: dict[str, str], state: StartupState) -> None:
        resp = self.client.get(f"{self.management}/models/{name}/all", headers=headers)
        if resp.status_code == 503:  # its archive could not be prepared (engine.failures)
            state.failed[name] = resp.json().get("message", resp.text)
            return
        if resp.status_code != 200:  # not registered under this name, or not ours to see
            if name in self.expected and not state.healthy:
                state.loading.append(name)
            return
        versions = resp.json()
        # loadFailed: the engine gave up (a load error retrying cannot fix); a loadError alone
        # is a failed try that the engine retries.
        errors = [v.get("loadError", "cannot load") for v in versions if v.get("loadFailed")]
        if errors:
            state.failed[name] = errors[0]
        elif all(v.get("status") == "Healthy" for v in versions):
            state.ready.append(name)
        else:
            state.loading.append(name)
            pending = [v["rayPending"] for v in versions if v.get("rayPending")]
            if pending:
                state.pending[name] = pending[0]
