"""The skip rules of tests/prerequisites.py, on real tests run by a child pytest.

A skip for lack of ../shared while ../shared is there fails, and so does a skip for lack of a tool
CI installs when CI=true. ../shared is faked with $OCRSERVE_SHARED; scikit-image is hidden behind a
package of that name whose import fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import prerequisites
from tests.conftest import REPO

#: Two real tests: one reads ../shared, one needs scikit-image.
TESTS = [
    "tests/unit/mmocr/test_checkpoint.py::test_shared_fixture_checkpoints_load",
    "tests/unit/mmocr/models/test_textsnake.py::test_skeletonize_equals_skimage",
]


def _pytest(tmp_path: Path, shared: Path, ci: bool, *args: str) -> subprocess.CompletedProcess[str]:
    hidden = tmp_path / "hidden"
    (hidden / "skimage").mkdir(parents=True, exist_ok=True)
    (hidden / "skimage" / "__init__.py").write_text("raise ModuleNotFoundError('hidden')\n")
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env |= {"OCRSERVE_SHARED": str(shared), "PYTHONPATH": f"{hidden}{os.pathsep}{REPO}"}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip


def test_without_shared_and_tools_they_skip_with_the_reason(tmp_path: Path) -> None:
    res = _pytest(tmp_path, tmp_path / "absent", False, *TESTS)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 skipped" in res.stdout, res.stdout
    assert f"needs ../shared (not found at {tmp_path / 'absent'})" in res.stdout
    assert "needs scikit-image" in res.stdout


def test_with_shared_missing_a_fixture_and_in_ci_they_fail(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    res = _pytest(tmp_path, tmp_path / "shared", True, *TESTS)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "1 failed, 1 error" in res.stdout, res.stdout
    shared = tmp_path / "shared"
    assert f"../shared is at {shared} but fixtures/mmocr-0.6.3 is missing" in res.stdout
    assert "CI=true: .ci/run installs what this test needs, so it must run" in res.stdout


def test_other_skips_of_shared_tests_fail_when_shared_is_there(tmp_path: Path) -> None:
    (tmp_path / "shared" / "fixtures").mkdir(parents=True)
    test_file = tmp_path / "test_old_style.py"
    test_file.write_text(
        "import pytest\n"
        "@pytest.mark.skipif(True, reason='fixtures not found (no ../shared)')\n"
        "def test_own_skip(): pass\n"
        "@pytest.mark.shared('fixtures')\n"
        "@pytest.mark.parametrize('model', [])\n"
        "def test_nothing_found(model): pass\n"
        "@pytest.mark.skipif(True, reason='unrelated')\n"
        "def test_unrelated(): pass\n"
    )
    res = _pytest(tmp_path, tmp_path / "shared", False, "-p", "tests.conftest", str(test_file))
    assert res.returncode == 1, res.stdout + res.stderr
    assert "1 skipped, 2 errors" in res.stdout, res.stdout  # errors: they fail at setup
    assert "yet a test skipped for lack of it" in res.stdout
    assert "yet a parity test found nothing in it to run" in res.stdout


@pytest.mark.parametrize("ci", ["true", "1", "yes"])
def test_ci_is_read_as_most_ci_services_set_it(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    reason = prerequisites.tool_skip_reason("x", "pip install x")
    assert prerequisites.forbidden_skip(reason, marked_shared=False)
    monkeypatch.setenv("CI", "false")
    assert prerequisites.forbidden_skip(reason, marked_shared=False) is None
