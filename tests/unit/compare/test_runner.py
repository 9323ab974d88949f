"""`ocrserve.compare.runner`: the CLI surface (parser, inputs, key, table), without a server."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ocrserve.compare.matching import Tolerances, compare_results
from ocrserve.compare.runner import (
    _ServedModel,
    add_compare_parser,
    find_images,
    format_table,
    read_token,
)
from ocrserve.errors import ConfigError
from tests.conftest import REPO

TOL = Tolerances()


def _box(x: float, y: float) -> list[float]:
    return [x, y, x + 40, y, x + 40, y + 10, x, y + 10, 0.9]


def _det(*boxes: list[float]) -> dict[str, object]:
    return {"boundary_result": list(boxes), "filename": None}


def test_table() -> None:
    ok = compare_results("x/a.png", "textdet", _det(_box(0, 0)), _det(_box(0, 0)), TOL)
    bad = compare_results(
        "b.png", "textrecog", {"text": "a", "score": 1.0}, {"text": "b", "score": 1.0}, TOL
    )
    lines = format_table([ok, bad]).splitlines()
    assert lines[0].split()[:4] == ["image", "local", "served", "matched"]
    assert lines[1].split() == ["a.png", "1", "1", "1", "0.000", "0.00e+00", "0", "agree"]
    assert lines[2].split() == ["b.png", "1", "1", "1", "-", "0.00e+00", "1", "DIFFER"]


def test_find_images(tmp_path: Path) -> None:
    for name in ("b.JPG", "a.png", "notes.txt", "c.webp"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in find_images(tmp_path)] == ["a.png", "b.JPG", "c.webp"]
    assert find_images(tmp_path / "a.png") == [tmp_path / "a.png"]
    with pytest.raises(ConfigError, match="no such image or folder"):
        find_images(tmp_path / "missing.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no images"):
        find_images(tmp_path / "empty")


def test_read_token(tmp_path: Path) -> None:
    key_file = tmp_path / "key_file.json"
    assert read_token(None, key_file) is None
    key_file.write_text(json.dumps({"inference": {"key": "abc"}, "management": {"key": "m"}}))
    assert read_token(None, key_file) == "abc"
    assert read_token("given", key_file) == "given"
    key_file.write_text("{not json")
    assert read_token(None, key_file) is None


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="ocrserve")
    add_compare_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["compare", *argv])


def test_parser_defaults_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse("img.png", "cfg.py", "ckpt.pth", "dbnet")
    assert args.model == ["cfg.py", "ckpt.pth", "dbnet"]
    default = ("http://127.0.0.1:8080", "cpu", 0.5)
    assert (args.inference_address, args.device, args.score_thr) == default
    assert (args.vertex_tol, args.score_tol, args.match_iou) == (0.5, 1e-4, 0.5)
    assert args.token is None and args.threads == 0
    with pytest.raises(SystemExit):
        _parse("--help")
    text = " ".join(capsys.readouterr().out.split())
    for default in (
        "Default: 0.5.",
        "Default: 0.0001.",
        "Default: http://127.0.0.1:8080.",
        "Default: cpu.",
        "./key_file.json",
        "Exit status: 0",
    ):
        assert default in text


@pytest.mark.parametrize("flag", ["--inference-address", "--inference-addr"])
@pytest.mark.parametrize("address", ["127.0.0.1:9", "http://127.0.0.1:9"])
def test_inference_address_and_its_alias_take_either_form(flag: str, address: str) -> None:
    """start, stop and key spell it --inference-address; MMOCR's test_torchserve.py spelled
    it --inference-addr HOST:PORT: both are the one option, either form of address."""
    args = _parse("img.png", "a.mar", "name", flag, address)
    assert args.inference_address == address
    served = _ServedModel(address, "name", None, 1.0)
    served.close()
    assert served.url == "http://127.0.0.1:9/predictions/name"


@pytest.mark.parametrize(
    "model", [["a.mar"], ["a.mar", "b", "c"], ["cfg.py", "name"], ["a", "b", "c", "d"]]
)
def test_wrong_model_arguments(model: list[str], tmp_path: Path) -> None:
    from ocrserve.compare.runner import run_compare

    (tmp_path / "x.png").write_bytes(b"x")
    with pytest.raises(ConfigError, match="usage: ocrserve compare"):
        run_compare(_parse(str(tmp_path / "x.png"), *model, "--out", str(tmp_path / "out")))


def test_bad_tolerance(tmp_path: Path) -> None:
    from ocrserve.compare.runner import run_compare

    with pytest.raises(ConfigError, match="--vertex-tol=-1.0: must be >= 0"):
        run_compare(_parse("x.png", "m.mar", "m", "--vertex-tol", "-1"))


def test_import_is_light() -> None:
    """The CLI imports this module to build its parser: nothing heavy may load with it."""
    code = (
        "import sys, ocrserve.compare.runner; "
        "print(sorted(m for m in ('numpy', 'torch', 'cv2', 'httpx', 'PIL', 'shapely') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True
    ).stdout
    assert out.strip() == "[]"


def test_progress_bar_only_on_a_terminal() -> None:
    import io

    from ocrserve.compare.runner import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    term = Terminal()
    bar = _Progress(4, term, width=8)
    bar.show(2, "b.png")
    bar.close()
    assert term.getvalue().startswith("\r[####....] 2/4 b.png")
    piped = io.StringIO()
    bar = _Progress(4, piped)
    bar.show(2, "b.png")
    bar.close()
    assert piped.getvalue() == ""


def test_token_beginning_with_a_dash_is_given_with_an_equals_sign() -> None:
    # argparse takes "--token -abc" for two options; "--token=-abc" is the documented form.
    assert _parse("img.png", "a.mar", "m", "--token=-abc").token == "-abc"
    with pytest.raises(SystemExit):
        _parse("img.png", "a.mar", "m", "--token", "-abc")


def test_key_file_of_the_server_at_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys
    import time

    from ocrserve.compare.runner import served_key_file
    from ocrserve.server.instance import ServerRecord

    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert served_key_file("127.0.0.1:9") == Path.cwd() / "key_file.json"
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ocrserve"])
    while b"ocrserve" not in Path(f"/proc/{server.pid}/cmdline").read_bytes():
        time.sleep(0.01)  # until it has exec'ed: a pid counts only if its command says ocrserve
    try:
        keys = tmp_path / "srv" / "key_file.json"
        record = ServerRecord(server.pid, "/srv", "http://127.0.0.1:9", "x:1", str(keys))
        record.write(tmp_path / "ocrserve-127.0.0.1-9.pid")
        assert served_key_file("127.0.0.1:9") == keys
        assert served_key_file("http://127.0.0.1:9") == keys
    finally:
        server.kill()
        server.wait()
