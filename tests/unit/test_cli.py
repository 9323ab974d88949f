from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ocrserve.cli import build_parser, main
from ocrserve.server.instance import read_pid
from ocrserve.settings import Settings


def test_stale_pid_of_another_program_is_ignored(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])
    try:
        pid_file = tmp_path / "p.pid"
        pid_file.write_text(str(other.pid))
        assert read_pid(str(pid_file)) is None
        pid_file.write_text("garbage")
        assert read_pid(str(pid_file)) is None
    finally:
        other.kill()
        other.wait()


def test_every_setting_is_a_start_option() -> None:
    start = build_parser()._subparsers._group_actions[0].choices["start"]  # type: ignore[union-attr]
    dests = {a.dest for a in start._actions}
    assert {f.name for f in Settings.fields()} <= dests
    help_text = start.format_help()
    assert "--models" in help_text and "--models-json" in help_text
    assert "--disable-token-auth" in help_text


def test_key_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["key", "--key-file", str(tmp_path / "none.json")]) == 1
    err = capsys.readouterr().err
    assert "cannot read" in err and "none.json" in err and "--inference-address" in err


def test_key_of_no_running_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pid_file = str(tmp_path / "none.pid")
    assert main(["key", "--pid-file", pid_file, "--inference-address", "127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert "not running at 127.0.0.1:9" in err and pid_file in err and "--key-file" in err
