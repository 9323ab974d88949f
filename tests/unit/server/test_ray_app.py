"""`ocrserve.server.ray_app.build` without a cluster: what a Serve config's ``args`` may say and
what makes it refuse (deployed for real: tests/integration/test_ray_app.py)."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest

from ocrserve.errors import ConfigError
from tests.ray_cluster import RAY_SKIP_REASON, ray_installed


@pytest.fixture()
def ray_app() -> ModuleType:
    if not ray_installed():
        pytest.skip(RAY_SKIP_REASON)
    from ocrserve.server import ray_app

    return ray_app


def test_token_authorization_needs_a_supplied_inference_key(
    ray_app: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OCRSERVE_INFERENCE_KEY", raising=False)
    with pytest.raises(ConfigError, match="set OCRSERVE_INFERENCE_KEY in the environment"):
        ray_app.build({"model_store": str(tmp_path)})


def test_a_model_that_cannot_load_fails_the_application(
    ray_app: ModuleType, tmp_path: Path
) -> None:
    args = {"model_store": str(tmp_path), "load_models": "missing.mar",
            "disable_token_authorization": True}  # fmt: skip
    with pytest.raises(ConfigError, match="cannot load missing.mar: Model not found at"):
        ray_app.build(args)


def test_args_are_settings_keys(ray_app: ModuleType) -> None:
    with pytest.raises(ConfigError, match="'num_replicas': not a setting"):
        ray_app.build({"num_replicas": 2})
