"""ocrserve as one Ray Serve application built from a Serve config (a KubeRay ``RayService``).

A ``RayService``'s ``serveConfigV2`` names an application by ``import_path`` and ``args``;
KubeRay hands it to the head's dashboard, whose Serve controller imports `build` with the
``args`` and runs what it returns. Here that is an ingress deployment (`OcrIngress`) that
serves ocrserve's inference surface (`ocrserve.server.app.inference_app`: the same routes,
token authorization, limits and error JSON as the server's port 8080) through Serve's HTTP
proxy, and one `ocrserve.server.ray_replica` deployment per model version
(``OcrReplica.NAME.VERSION``), with the archive bytes in its arguments.

The ``args`` are config.properties keys (`Settings.from_properties`): ``model_store``,
``load_models``, ``models`` (per-version workers, batching), ``ray_replica_cpus``, ... The
Serve config, not a management API, owns the replicas here: there is no management or
metrics port; scaling is a change of the config (``minWorkers``/``maxWorkers`` in ``models``,
or a deployment's ``num_replicas`` in ``serveConfigV2``) that KubeRay applies.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ray import serve

from ocrserve.archives.bundled import ensure_bundled_store
from ocrserve.archives.spec import ModelSpec
from ocrserve.archives.store import ModelStore
from ocrserve.errors import ConfigError
from ocrserve.server.app import apply_default_versions, inference_app, model_config
from ocrserve.server.auth import KEY_ENV, TokenStore, supplied_keys
from ocrserve.server.engine import ServedModel
from ocrserve.server.ray_engine import RayEngine, RayModel, direct
from ocrserve.server.ray_replica import DEPLOYMENT_NAME
from ocrserve.settings import ModelConfig, Settings

__all__ = ["INGRESS", "OcrIngress", "build"]


def build(args: dict[str, Any]) -> Any:
    """The application of a Serve config's ``import_path: ocrserve.server.ray_app:build``.

    Runs where Serve builds applications (a task on the head): the model store must be
    there; the replicas get the archives as bytes. A model that cannot be loaded fails the
    whole application, with the reason in Serve's status (what KubeRay reports)."""
    settings = Settings.from_properties(args)
    _check_keys(settings)
    root = Path(settings.model_store) if settings.model_store else None
    store = ModelStore(root, ensure_bundled_store)
    try:
        load = settings.load_models or (() if root else ("all",))
        specs, failures = store.prepare_all(load)
        if failures:
            raise ConfigError("; ".join(f"cannot load {f.url}: {f.reason}" for f in failures))
        models = []
        for spec in specs:
            model = RayModel(spec, model_config(settings, spec), settings)
            model.deployment = f"{DEPLOYMENT_NAME}.{spec.name}.{spec.version}"
            models.append((spec, model.config, model.deployment, model.bound()))
    finally:
        store.close()
    return INGRESS.bind(settings, models)


def _check_keys(settings: Settings) -> None:
    """With token authorization on, the inference key must be supplied: a random one would
    stay inside the ingress replica's key file, out of every client's reach (and with no
    management port, no ``GET /token`` could fetch it)."""
    if settings.disable_token_authorization:
        return
    if "inference" not in supplied_keys(os.environ):
        raise ConfigError(
            f"token authorization is on: set {KEY_ENV['inference']} in the environment of "
            "the Ray pods, or disable_token_authorization=true"
        )


class ConfiguredModel(RayModel):
    """A model version whose replicas the Serve config owns: the ingress only sends it
    requests and watches its replicas; it never deploys, scales or deletes it."""

    def __init__(
        self, spec: ModelSpec, config: ModelConfig, settings: Settings, app: str, deployment: str,
        handle: Any,
    ) -> None:  # fmt: skip
        super().__init__(spec, config, settings)
        self.app, self.deployment = app, deployment
        self._handle = direct(handle, settings)
        self.deployed = True
        self._deployed_at = 0.0

    def scale(self, count: int) -> None:
        self.target = count

    def gives_up_waiting(self) -> bool:
        """Replicas wait for room as long as the Serve config wants them (KubeRay may add
        nodes): the wait is shown, never a load failure."""
        return False

    async def stop(self) -> None:
        """Serve stops the replicas with the application."""


class _ConfiguredEngine(RayEngine):
    def __init__(self, settings: Settings, handles: dict[tuple[str, str], Any]) -> None:
        super().__init__(settings)
        self._handles = handles
        self._app = serve.get_replica_context().app_name

    def new_model(self, spec: ModelSpec, config: ModelConfig) -> ServedModel:
        deployment, handle = self._handles[(spec.name, spec.version)]
        return ConfiguredModel(spec, config, self.settings, self._app, deployment, handle)

    async def shutdown(self) -> None:
        """The cluster is not the ingress's to leave."""


class OcrIngress:
    """The ingress: ocrserve's inference surface over handles to the model deployments."""

    async def __init__(  # type: ignore[misc]  # Serve awaits an async constructor
        self, settings: Settings, models: list[tuple[ModelSpec, ModelConfig, str, Any]]
    ) -> None:
        _check_keys(settings)
        handles = {(spec.name, spec.version): (dep, handle) for spec, _, dep, handle in models}
        self.engine = _ConfiguredEngine(settings, handles)
        configs = {(spec.name, spec.version): config for spec, config, _, _ in models}
        await self.engine.start([spec for spec, *_ in models], (), configs)
        apply_default_versions(self.engine, settings)
        tokens = None
        if not settings.disable_token_authorization:
            folder = tempfile.mkdtemp(prefix="ocrserve-ingress-")
            keyed = replace(settings, key_file=str(Path(folder) / "key_file.json"))
            tokens = TokenStore.for_server(keyed)
        self.asgi = inference_app(self.engine, settings, None, tokens)

    def __serve_build_asgi_app__(self) -> Any:
        return self.asgi


#: The ingress deployment `build` binds (Serve's HTTP proxy routes every path to it).
INGRESS: serve.Deployment = serve.deployment(name="OcrIngress", num_replicas=1)(
    serve.ingress()(OcrIngress)
)
