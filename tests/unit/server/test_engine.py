"""The engine: models, versions and their settings."""

from __future__ import annotations

import pytest

from ocrserve.server.devices import threads_per_worker
from ocrserve.settings import Settings


def test_every_worker_gets_every_core_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrserve.archives.spec import ModelSpec
    from ocrserve.server import devices
    from ocrserve.server.engine import Engine
    from ocrserve.settings import ModelConfig

    monkeypatch.setattr(devices, "cpu_count", lambda: 8)
    assert threads_per_worker(Settings(threads_per_worker=3)) == 3
    assert threads_per_worker(Settings()) == 8
    engine = Engine(Settings())
    spec = ModelSpec(name="a", version="1.0", url="a.mar", model_dir=".", task="textdet")
    runtime = engine.register(spec, ModelConfig(min_workers=4, max_workers=4))
    assert runtime.threads == 8


def test_engine_counts_gpus_from_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from ocrserve.server.engine import Engine

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    assert Engine(Settings()).gpus.count == 3
    assert Engine(Settings(number_of_gpu=0)).gpus.count == 0
    assert Engine(Settings(number_of_gpu=1)).gpus.count == 1
