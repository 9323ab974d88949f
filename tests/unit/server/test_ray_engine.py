"""`ocrserve.server.ray_engine` without a cluster: what Ray is asked for, and that nothing of
Ray is imported unless ``engine=ray`` (cluster tests: tests/integration/test_ray_engine.py)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import zipfile
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from ocrserve.archives.spec import ModelSpec
from ocrserve.settings import ModelConfig, Settings
from tests.ray_cluster import RAY_SKIP_REASON, ray_installed


def test_without_engine_ray_nothing_of_ray_is_imported() -> None:
    """The CLI, the settings and the local engine never import Ray (in a fresh interpreter)."""
    code = (
        "import sys; from ocrserve.cli import main; from ocrserve.settings import Settings; "
        "from ocrserve.server.app import new_engine; e = new_engine(Settings()); "
        "print(type(e).__name__, sorted(m for m in sys.modules if m.split('.')[0] == 'ray'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Engine", "[]"]


def test_engine_setting_is_checked() -> None:
    from ocrserve.errors import ConfigError

    with pytest.raises(ConfigError, match="engine='spark': expected local or ray"):
        Settings(engine="spark")


@pytest.fixture()
def ray_engine() -> ModuleType:
    if not ray_installed():
        pytest.skip(RAY_SKIP_REASON)
    from ocrserve.server import ray_engine

    return ray_engine


def _model(ray_engine: ModuleType, tmp_path: Path, **config: int) -> Any:
    (tmp_path / "MAR-INF").mkdir(exist_ok=True)
    (tmp_path / "MAR-INF" / "MANIFEST.json").write_text("{}")
    (tmp_path / "weights.onnx").write_bytes(b"\0" * 10)
    spec = ModelSpec("rec", "1.0", "rec", str(tmp_path), "rec.mar")
    settings = Settings(ray_replica_cpus=0.5)
    return ray_engine.RayModel(spec, ModelConfig(**config), settings)


def test_archive_travels_as_bytes(ray_engine: ModuleType, tmp_path: Path) -> None:
    model = _model(ray_engine, tmp_path)
    assert model._archive is None  # read when first deployed
    model.bound()
    with zipfile.ZipFile(BytesIO(model._archive)) as zf:
        assert sorted(zf.namelist()) == ["MAR-INF/MANIFEST.json", "weights.onnx"]
    assert model.app == "ocrserve.rec.1.0"


def test_workers_map_onto_replicas_and_autoscaling(ray_engine: ModuleType, tmp_path: Path) -> None:
    fixed = _model(ray_engine, tmp_path, min_workers=2, max_workers=2)._options()
    assert fixed["num_replicas"] == 2 and "autoscaling_config" not in fixed
    assert fixed["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0}
    ranged = _model(ray_engine, tmp_path, min_workers=1, max_workers=3, batch_size=4)._options()
    auto = ranged["autoscaling_config"]
    assert ranged["num_replicas"] == "auto"
    assert (auto["min_replicas"], auto["max_replicas"], auto["target_ongoing_requests"]) == (
        1,
        3,
        4,
    )
    gpu = _model(ray_engine, tmp_path)
    gpu.config = ModelConfig(device_type="gpu")
    assert gpu._options()["ray_actor_options"]["num_gpus"] == 1
    assert "max_replicas_per_node" not in fixed
    gpu.settings = Settings(ray_max_replicas_per_node=1)
    assert gpu._options()["max_replicas_per_node"] == 1


def test_replicas_hold_four_requests_or_two_batches(ray_engine: ModuleType, tmp_path: Path) -> None:
    assert _model(ray_engine, tmp_path)._options()["max_ongoing_requests"] == 4
    assert _model(ray_engine, tmp_path, batch_size=8)._options()["max_ongoing_requests"] == 16


async def _enter(gate: Any) -> None:
    """A request's way through the gate (as `RayModel.submit`): join, wait, and give the place
    back if the wait is cancelled."""
    turn = gate.join()
    try:
        await gate.wait(turn)
    except BaseException:
        gate.release(turn)
        raise


def test_gate_admits_its_room_in_order_and_passes_on_a_place_given_up(
    ray_engine: ModuleType,
) -> None:
    async def scenario() -> None:
        gate = ray_engine.Gate(room=1, queue_size=2)
        await _enter(gate)
        order: list[str] = []

        async def wait(name: str) -> None:
            await _enter(gate)
            order.append(name)

        first, second = asyncio.create_task(wait("first")), asyncio.create_task(wait("second"))
        await asyncio.sleep(0)
        assert (gate.inside, gate.waiting, gate.can_wait()) == (1, 2, False)
        gate.leave()  # the place goes to the first in line...
        first.cancel()  # ...which gives it up before it runs: the second gets it
        await asyncio.gather(first, return_exceptions=True)
        await asyncio.sleep(0)
        assert order == ["second"] and (gate.inside, gate.waiting) == (1, 0)
        await second
        third = asyncio.create_task(wait("third"))
        await asyncio.sleep(0)
        third.cancel()  # gives up while waiting: leaves the line
        await asyncio.gather(third, return_exceptions=True)
        assert (gate.inside, gate.waiting) == (1, 0)
        fourth, fifth = asyncio.create_task(wait("fourth")), asyncio.create_task(wait("fifth"))
        await asyncio.sleep(0)
        gate.resize(3)  # a replica more: room for both
        await asyncio.sleep(0)
        assert order == ["second", "fourth", "fifth"] and gate.inside == 3
        await asyncio.gather(fourth, fifth)

    asyncio.run(scenario())


def test_gate_answers_its_line_when_the_model_goes(ray_engine: ModuleType) -> None:
    from ocrserve.errors import ServiceUnavailable

    async def scenario() -> None:
        gate = ray_engine.Gate(room=1, queue_size=5)
        await _enter(gate)
        waiting = [asyncio.create_task(_enter(gate)) for _ in range(3)]
        await asyncio.sleep(0)
        gate.fail_all(ServiceUnavailable("Model rec is shutting down"))
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert [str(r) for r in results] == ["Model rec is shutting down"] * 3
        assert (gate.inside, gate.waiting) == (1, 0)

    asyncio.run(scenario())


def test_gate_places_are_taken_when_checked_and_given_back_whatever_became_of_them(
    ray_engine: ModuleType,
) -> None:
    """Requests arriving in one step of the loop: each check and join happen together, so the
    line never grows past its size (the join used to happen later, in the request's task)."""

    async def scenario() -> None:
        gate = ray_engine.Gate(room=1, queue_size=2)
        turns, refused = [], 0
        for _ in range(5):
            if gate.can_wait():
                turns.append(gate.join())
            else:
                refused += 1
        assert (refused, gate.inside, gate.waiting) == (2, 1, 2) and turns[0] is None
        gate.release(turns[2])  # the last in line gives up before its turn
        assert (gate.inside, gate.waiting) == (1, 1) and turns[2].cancelled()
        gate.release(turns[0])  # the one inside is done: the next is let in
        assert turns[1].done() and (gate.inside, gate.waiting) == (1, 0)
        gate.release(turns[1])
        assert (gate.inside, gate.waiting) == (0, 0)

    asyncio.run(scenario())


def _actor(state: str, rid: str = "abc") -> dict[str, Any]:
    """A replica's row of Ray's actor table, as `replica_actors` gives it."""
    pid = 0 if state == "PENDING_CREATION" else 42
    return {"Name": f"SERVE_REPLICA::app#OcrReplica#{rid}", "State": state, "Pid": pid,
            "Address": {"NodeID": "", "IPAddress": ""}}  # fmt: skip


def test_an_unplaced_replica_says_what_it_waits_for_then_gives_up_at_the_startup_timeout(
    ray_engine: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from ocrserve.server.ray_placement import ClusterRoom

    model = _model(ray_engine, tmp_path, startup_timeout=30)
    room = ClusterRoom(({"CPU": 0.5},), {"CPU": 2.0}, {"CPU": 0.25})
    pending = [_actor("PENDING_CREATION")]
    model.observe(0, pending, room=room)
    assert model.waiting is None  # placed within a moment, as a replica with room is
    model.replicas[0].first_seen -= ray_engine.WAIT_NOTICE_S
    with caplog.at_level("WARNING", logger=ray_engine.__name__):
        model.observe(0, pending, room=room)
        model.observe(0, pending, room=None)  # the demands not read: the same as before
        model.observe(0, pending, room=room)
    why = ("1 replica waits for a Ray node with CPU 0.5 free (the cluster has CPU 0.25 of 2 "
           "free): add a node, or lower ray_replica_cpus or the models' minWorkers")  # fmt: skip
    assert [r.getMessage() for r in caplog.records] == [f"model rec: {why}"]
    described = model.describe("1.0")
    assert described["rayPending"] == why and described["status"] == "Unhealthy"
    assert not model.load_failed
    other = ClusterRoom(({"CPU": 1.0},), {"CPU": 2.0}, {"CPU": 0.25})  # another model's demand
    model.observe(0, pending, room=other)
    assert model.waiting is None and "rayPending" not in model.describe("1.0")
    model.replicas[0].first_seen -= 30
    model.observe(0, pending, room=room)
    assert model.load_failed and model.load_error == (
        f"no replica placed within startupTimeout (30 s): {why}"
    )
    assert model.describe("1.0")["loadFailed"] is True
    model.observe(1, [_actor("ALIVE")], room=None)  # Ray found it room after all: it serves
    assert not model.load_failed and model.load_error is None and model.waiting is None


def test_a_rayservice_model_waits_without_failing(ray_engine: ModuleType, tmp_path: Path) -> None:
    model = _model(ray_engine, tmp_path, startup_timeout=1)
    model.gives_up_waiting = lambda: False  # as ocrserve.server.ray_app.ConfiguredModel
    model.observe(0, [_actor("PENDING_CREATION")])
    model.replicas[0].first_seen -= 60
    model.observe(0, [_actor("PENDING_CREATION")], room=ray_engine.ClusterRoom(({"CPU": 0.5},)))
    assert model.waiting and not model.load_failed
