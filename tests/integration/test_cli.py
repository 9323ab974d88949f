"""The ``ocrserve`` command without surprises, run as a user runs it (issue #14, item 8):
servers started in the background from any folder, found again by their address, their keys,
starts that say what they wait for and fail fast, archive names checked before the work."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ocrserve.server.instance import server_command
from tests.conftest import DEMO, REPO, ServerProcess, free_port

REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()


def _ocrserve(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """``ocrserve ARGS`` in ``cwd``, this checkout's code first on PYTHONPATH."""
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(server_command(*args), capture_output=True, text=True, cwd=cwd,
                          env=environ, timeout=timeout)  # fmt: skip


def _addresses() -> list[str]:
    return [f"http://127.0.0.1:{free_port()}" for _ in range(3)]


def _start_args(addresses: list[str], logs: Path, *extra: str) -> list[str]:
    inference, management, metrics = addresses
    return ["start", "--inference-address", inference, "--management-address", management,
            "--metrics-address", metrics, "--log-location", str(logs), *extra]  # fmt: skip


def _pings(address: str) -> bool:
    try:
        return httpx.get(address + "/ping", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_two_background_servers_from_two_folders(tmp_path: Path) -> None:
    run = tmp_path / "run"  # the runtime folder of the pid files, this test's own
    run.mkdir()
    env = {"XDG_RUNTIME_DIR": str(run)}
    a_dir, b_dir, elsewhere = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for folder in (a_dir, b_dir, elsewhere):
        folder.mkdir()
    # A clone's parent: `python -m ocrserve` here imports this broken package.
    (a_dir / "ocrserve").mkdir()
    (a_dir / "ocrserve" / "__init__.py").write_text("raise ImportError('the wrong ocrserve')\n")
    a, b = _addresses(), _addresses()
    b_config = b_dir / "config.properties"
    b_config.write_text(f"inference_address={b[0]}\nmanagement_address={b[1]}\n")
    try:
        started_a = _ocrserve(*_start_args(a, a_dir / "logs", "--models", "ppocr_rec"),
                              cwd=a_dir, env=env)  # fmt: skip
        assert started_a.returncode == 0, started_a.stderr
        # It said what it was waiting for while the model loaded.
        assert "loading: 0/1 models ready; waiting for ppocr_rec" in started_a.stderr
        started_b = _ocrserve(*_start_args(b, b_dir / "logs", "--models", "ppocr_rec"),
                              cwd=b_dir, env=env)  # fmt: skip
        assert started_b.returncode == 0, started_b.stderr
        assert _pings(a[0]) and _pings(b[0])
        pid_files = sorted(p.name for p in run.glob("*.pid"))
        ports = sorted(int(x.rsplit(":", 1)[1]) for x in (a[0], b[0]))
        assert pid_files == sorted(f"ocrserve-127.0.0.1-{p}.pid" for p in ports)
        again = _ocrserve(*_start_args(a, a_dir / "logs"), cwd=b_dir, env=env)
        assert again.returncode == 1 and f"already running at {a[0]}" in again.stderr

        # From a third folder, each server's key by its address or its config file.
        key_a = _ocrserve("key", "--inference-address", a[0], cwd=elsewhere, env=env)
        key_b = _ocrserve("key", "--ts-config", str(b_config), cwd=elsewhere, env=env)
        assert key_a.returncode == 0 and key_b.returncode == 0, key_a.stderr + key_b.stderr
        keys_a = json.loads((a_dir / "key_file.json").read_text())
        assert key_a.stdout.strip() == keys_a["inference"]["key"]
        assert (
            key_b.stdout.strip()
            == json.loads((b_dir / "key_file.json").read_text())["inference"]["key"]
        )
        auth = {"Authorization": f"Bearer {key_a.stdout.strip()}"}
        assert httpx.put(a[0] + "/predictions/ppocr_rec", content=REC_IMG, headers=auth,
                         timeout=60).status_code == 200  # fmt: skip

        # Stopping one by its address leaves the other running.
        stopped = _ocrserve("stop", "--inference-address", a[0], cwd=elsewhere, env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert not _pings(a[0]) and _pings(b[0])
        assert not (a_dir / "key_file.json").exists()
        gone = _ocrserve("stop", "--inference-address", a[0], cwd=elsewhere, env=env)
        assert gone.returncode == 1 and f"not running at {a[0]}" in gone.stderr
        stopped = _ocrserve("stop", "--ts-config", str(b_config), cwd=elsewhere, env=env)
        assert stopped.returncode == 0, stopped.stderr
        assert not _pings(b[0]) and not list(run.iterdir())
    finally:
        for address in (a[0], b[0]):
            _ocrserve("stop", "--inference-address", address, cwd=elsewhere, env=env)


def test_supplied_keys_rotation_and_expired_key(tmp_path: Path) -> None:
    inference, api = "inference-key-" + "x" * 30, "api-key-" + "y" * 40
    env = {"OCRSERVE_INFERENCE_KEY": inference, "OCRSERVE_API_KEY": api}
    keys = tmp_path / "secrets" / "keys.json"
    keys.parent.mkdir()
    store = tmp_path / "store"
    store.mkdir()  # an empty model store: no model, the server is healthy at once
    srv = ServerProcess(tmp_path / "srv", "--model-store", str(store), "--key-file", str(keys),
                        "--token-expiration-min", "0.05", env=env, auth=True)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = ("--pid-file", str(srv.pid_file))
    try:
        srv.wait_healthy()
        assert keys.stat().st_mode & 0o777 == 0o600
        assert not (srv.cwd / "key_file.json").exists()
        found = _ocrserve("key", *where, cwd=elsewhere)
        assert found.returncode == 0 and found.stdout.strip() == inference, found.stderr
        nope = srv.url + "/predictions/nope"
        assert httpx.post(nope, headers={"Authorization": "Bearer wrong"}).status_code == 401
        time.sleep(3.5)  # past token_expiration_min: generated keys expire, supplied ones not
        headers = {"Authorization": f"Bearer {inference}"}
        assert httpx.post(nope, headers=headers).status_code == 404  # authorized, no such model
        expired = _ocrserve("key", "--type", "management", *where, cwd=elsewhere)
        assert expired.returncode == 1 and "expired at" in expired.stderr
        hint = f"{srv.management_url}/token?type=management"
        assert hint in expired.stderr and not expired.stdout
        # The way out it names: the API key asks for a new management key.
        api_key = _ocrserve("key", "--type", "API", *where, cwd=elsewhere).stdout.strip()
        assert api_key == api
        assert httpx.get(hint, headers={"Authorization": f"Bearer {api_key}"}).status_code == 200
        fresh = _ocrserve("key", "--type", "management", *where, cwd=elsewhere)
        assert fresh.returncode == 0, fresh.stderr
        listed = httpx.get(srv.management_url + "/models",
                           headers={"Authorization": f"Bearer {fresh.stdout.strip()}"})  # fmt: skip
        assert listed.status_code == 200
    finally:
        assert srv.stop() == 0
    assert not keys.exists()
    log = srv.log() + "".join(p.read_text() for p in (srv.workdir / "logs").glob("*.log"))
    assert inference not in log and api not in log and "keys.json" in log


@pytest.mark.parametrize(
    ("value", "why"), [("-" + "k" * 40, "must not begin with '-'"), ("short", "32 to 256")]
)
def test_bad_supplied_key_is_refused_unechoed(tmp_path: Path, value: str, why: str) -> None:
    store = tmp_path / "store"
    store.mkdir()
    srv = ServerProcess(tmp_path, "--model-store", str(store), auth=True,
                        env={"OCRSERVE_MANAGEMENT_KEY": value})  # fmt: skip
    assert srv.proc.wait(60) == 2
    srv.stop()
    assert "OCRSERVE_MANAGEMENT_KEY" in srv.log() and why in srv.log()
    assert value not in srv.log()


def test_start_fails_fast_on_a_bad_archive(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "broken.mar").write_bytes(b"this is not a zip file")
    addresses = _addresses()
    began = time.monotonic()
    res = _ocrserve(*_start_args(addresses, tmp_path / "logs", "--model-store", str(store),
                                 "--models", "broken.mar", "--pid-file", str(tmp_path / "p.pid")),
                    cwd=tmp_path)  # fmt: skip
    took = time.monotonic() - began
    assert res.returncode == 1, res.stderr
    assert "broken: " in res.stderr and "not a" in res.stderr and "stopped the server" in res.stderr
    assert took < 60  # not default_startup_timeout (120) + 30 s
    assert not _pings(addresses[0]) and not (tmp_path / "p.pid").exists()


def test_start_fails_fast_on_a_model_that_cannot_load(tmp_path: Path) -> None:
    # A cv2 that fails the way opencv-python does on a machine without libGL: the worker
    # cannot load the model, the server would retry it forever.
    fake = tmp_path / "fakecv2"
    fake.mkdir()
    (fake / "cv2.py").write_text(
        "raise ImportError('libGL.so.1: cannot open shared object file: No such file')\n"
    )
    addresses = _addresses()
    began = time.monotonic()
    res = _ocrserve(*_start_args(addresses, tmp_path / "logs", "--models", "ppocr_rec",
                                 "--pid-file", str(tmp_path / "p.pid")),
                    cwd=tmp_path, env={"PYTHONPATH": f"{fake}{os.pathsep}{REPO}"})  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "ppocr_rec: " in res.stderr and "libGL.so.1" in res.stderr
    assert time.monotonic() - began < 60
    assert not _pings(addresses[0]) and not (tmp_path / "p.pid").exists()


def test_archive_name_collision_is_checked_first_and_suggests_a_name(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from tests.unit.mmocr.test_mmocr_predictor import _det_config, _weights

    config = _det_config()
    for stem in ("dbnet_a", "dbnet_b"):  # two models whose checkpoints share one file name
        (tmp_path / stem).mkdir()
        (tmp_path / stem / f"{stem}.py").write_text(
            "".join(f"{key} = {value!r}\n" for key, value in config.items())
        )
        torch.save({"state_dict": _weights(config)}, tmp_path / stem / "checkpoint.pth")
    out = tmp_path / "store"

    def archive(stem: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return _ocrserve("archive", str(tmp_path / stem / f"{stem}.py"),
                         str(tmp_path / stem / "checkpoint.pth"), "--output-folder", str(out),
                         *extra, cwd=tmp_path)  # fmt: skip

    first = archive("dbnet_a")
    assert first.returncode == 0, first.stderr
    before = (out / "checkpoint.mar").read_bytes()
    second = archive("dbnet_b")
    assert second.returncode == 2
    message = second.stderr
    assert "checkpoint.mar already exists: model checkpoint 1.0 made from dbnet_a.py" in message
    assert "--model-name NAME (e.g. --model-name dbnet_b)" in message
    assert "--force only to replace that same model" in message
    assert "reading config" not in message  # refused before any work
    assert (out / "checkpoint.mar").read_bytes() == before
    named = archive("dbnet_b", "--model-name", "dbnet_b")
    assert named.returncode == 0, named.stderr
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.mar", "dbnet_b.mar"]
