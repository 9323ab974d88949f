from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ocrserve.cli import build_parser, main
from ocrserve.server.instance import read_pid
from ocrserve.settings import Settings
from tests.conftest import REPO


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


def _help(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """What ``ocrserve COMMAND --help`` prints."""
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    return capsys.readouterr().out


def test_every_option_of_every_command_has_help_and_shows_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    for name, parser in sub.choices.items():  # type: ignore[union-attr]
        text = " ".join(_help(capsys, name).split())
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            what = f"ocrserve {name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{what} has no help"
            if action.default not in (None, False, []):
                assert "default" in action.help.lower(), f"{what}: default {action.default!r}"
            assert " ".join(action.help.split()).split("%")[0][:40] in text, what


def test_help_glitches_new_users_met(capsys: pytest.CaptureFixture[str]) -> None:
    usage = _help(capsys, "predict").split("\n\n")[0]
    assert " ".join(usage.split()) == (
        "usage: ocrserve predict [options] (CONFIG CHECKPOINT | MODEL.mar) IMAGE [IMAGE ...]"
    )
    key = " ".join(_help(capsys, "key").split())
    assert "--type {inference,management,API} Which key:" in key
    assert "Tries after a 503 or refused connection. Default: 3." in " ".join(
        _help(capsys, "request").split()
    )
    start = " ".join(_help(capsys, "start").split())
    assert "--allowed-urls REGEX [REGEX ...]" in start and "--models MODEL [MODEL ...]" in start


#: ``ocrserve`` in a Python where torch cannot be imported (as after ``pip install -e .``).
WITHOUT_TORCH = (
    "import sys; sys.modules['torch'] = None; from ocrserve.cli import main; "
    "sys.exit(main(sys.argv[1:]))"
)


def test_archive_without_torch_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    config = REPO / "tests" / "data" / "mmlab" / "v1" / "crnn_toy.py"
    checkpoint = tmp_path / "crnn.pth"
    checkpoint.write_bytes(b"not read")
    argv = ["archive", str(config), str(checkpoint), "--output-folder", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", WITHOUT_TORCH, *argv], capture_output=True,
                         text=True, env=env, timeout=120)  # fmt: skip
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("ocrserve: error: ocrserve archive needs PyTorch")
    assert "pip install -e '.[torch]' torch==2.13.0" in res.stderr
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in res.stderr
    assert not (tmp_path / "out").exists()


def test_every_command_spells_the_inference_address_one_way() -> None:
    """--inference-address URL everywhere; compare's --inference-addr and request's --url are
    aliases of the same option, after it."""
    sub = build_parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    spellings = {"--inference-address", "--inference-addr", "--url"}
    seen = {}
    for name, parser in sub.choices.items():  # type: ignore[union-attr]
        for action in parser._actions:
            if spellings & set(action.option_strings):
                seen[name] = action.option_strings
                assert action.option_strings[0] == "--inference-address", (name, action)
                assert action.dest == "inference_address" and action.metavar in (None, "URL")
    assert seen == {
        "start": ["--inference-address"],
        "compare": ["--inference-address", "--inference-addr"],
        "request": ["--inference-address", "--url"],
        "key": ["--inference-address"],
        "stop": ["--inference-address"],
    }
