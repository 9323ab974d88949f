from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ocrserve.errors import ConfigError
from ocrserve.server.instance import ServerRecord, find_key_file, read_key, server_command
from ocrserve.settings import Settings
from tests.conftest import REPO


def _shadowing_folder(tmp_path: Path) -> Path:
    """A folder holding a broken ``ocrserve/`` package, like a clone's parent."""
    (tmp_path / "ocrserve").mkdir()
    (tmp_path / "ocrserve" / "__init__.py").write_text("raise ImportError('the wrong ocrserve')\n")
    return tmp_path


def test_server_command_ignores_an_ocrserve_folder_in_the_working_directory(
    tmp_path: Path,
) -> None:
    cwd = _shadowing_folder(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    shadowed = subprocess.run([sys.executable, "-m", "ocrserve", "--version"], cwd=cwd, env=env,
                              capture_output=True, text=True)  # fmt: skip
    assert shadowed.returncode != 0 and "the wrong ocrserve" in shadowed.stderr
    ok = subprocess.run(server_command("--version"), cwd=cwd, env=env, capture_output=True,
                        text=True)  # fmt: skip
    assert ok.returncode == 0 and ok.stdout.startswith("ocrserve "), ok.stderr


def test_pid_file_per_inference_address(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    a = Settings(inference_address="http://127.0.0.1:9001").pid_path()
    b = Settings(inference_address="127.0.0.1:9002").pid_path()
    assert a == tmp_path / "ocrserve-127.0.0.1-9001.pid" != b
    assert Settings(pid_file="/x/y.pid").pid_path() == Path("/x/y.pid")


def test_record_names_the_key_file_of_the_live_server(tmp_path: Path) -> None:
    pid_file = tmp_path / "s.pid"
    settings = Settings(pid_file=str(pid_file), key_file=str(tmp_path / "keys.json"))
    assert find_key_file(settings) == tmp_path / "keys.json"  # no server: the setting
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ocrserve"])
    while b"ocrserve" not in Path(f"/proc/{server.pid}/cmdline").read_bytes():
        time.sleep(0.01)  # until it has exec'ed: a pid counts only if its command says ocrserve
    try:
        record = ServerRecord(server.pid, "/srv", "http://127.0.0.1:9", "http://127.0.0.1:10",
                              str(tmp_path / "elsewhere.json"))  # fmt: skip
        record.write(pid_file)
        assert pid_file.read_text() == str(server.pid)  # the pid file holds just the pid
        assert ServerRecord.read(pid_file) == record
        # Found from another folder by the pid file alone, whatever key_file says here.
        assert find_key_file(Settings(pid_file=str(pid_file))) == tmp_path / "elsewhere.json"
        assert find_key_file(settings, "given.json") == Path("given.json")
        ServerRecord(server.pid, "/srv", "a:1", "a:2", None).write(pid_file)
        with pytest.raises(ConfigError, match="without token authorization"):
            find_key_file(settings)
    finally:
        server.kill()
        server.wait()
    assert ServerRecord.read(pid_file) is None  # stale
    ServerRecord.remove(pid_file)
    assert not pid_file.exists() and not ServerRecord.path_for(pid_file).exists()


def test_expired_key_is_an_error_with_the_way_to_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "key_file.json"
    doc = {
        "management": {"key": "m" * 43, "expiration time": "2024-02-16T21:12:24.801167Z"},
        "inference": {"key": "i" * 43, "expiration time": "2024-02-16T21:12:24.801167Z"},
        "API": {"key": "a" * 43},
    }
    path.write_text(json.dumps(doc))
    before = 1708117000.0  # 2024-02-16T21:03Z
    assert read_key(path, "inference", "http://127.0.0.1:8081", now=before) == "i" * 43
    assert read_key(path, "API", "http://127.0.0.1:8081") == "a" * 43  # never expires
    with pytest.raises(ConfigError) as info:
        read_key(path, "inference", "http://127.0.0.1:9081")
    message = info.value.message
    assert "expired at 2024-02-16T21:12:24.801167Z" in message
    assert '"http://127.0.0.1:9081/token?type=inference"' in message
    assert "ocrserve key --type API" in message and "token_expiration_min" in message
