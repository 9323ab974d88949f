"""What a test needs beyond the repository, and the one way a test may skip for lacking it.

- ``../shared`` (MMOCR parity fixtures, data sets, TorchServe transcripts), the folder beside the
  repository root, or ``$OCRSERVE_SHARED``: mark a test ``@needs_shared("fixtures/...")``. It
  skips with `SHARED_SKIP_REASON` only when the folder itself is absent; when the folder is there
  but lacks the path, the test fails, so parity never turns into a green skip.
- Tools the package registries provide (``pip``, ``apt``), which ``.ci/run`` installs: skip with
  a reason from `tool_skip_reason`. Under ``CI=true`` such a skip is a failure.

`forbidden_skip` is the rule; ``tests/conftest.py`` applies it to every skip of the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("OCRSERVE_SHARED") or Path(__file__).resolve().parents[2] / "shared")
SHARED_SKIP_REASON = f"needs ../shared (not found at {SHARED})"
#: Ends every `tool_skip_reason`; what the CI rule looks for.
CI_INSTALLS = "CI installs it"


def needs_shared(*paths: str) -> pytest.MarkDecorator:
    """Mark a test (or a module's ``pytestmark``) as reading these paths under ../shared."""
    return pytest.mark.shared(*paths)


def shared_path(relative: str) -> Path:
    """``SHARED / relative``; skip if ../shared is absent, fail if only ``relative`` is."""
    path = SHARED / relative
    if not SHARED.is_dir():
        pytest.skip(SHARED_SKIP_REASON)
    if not path.exists():
        pytest.fail(f"../shared is at {SHARED} but {relative} is missing from it", pytrace=False)
    return path


def tool_skip_reason(what: str, install: str) -> str:
    """The reason to skip for lack of a registry tool: what is missing and how to install it."""
    return f"needs {what} ({install}); {CI_INSTALLS}"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def forbidden_skip(reason: str, *, marked_shared: bool) -> str | None:
    """Why a skip with this reason must count as a failure here, or None if it may skip."""
    if SHARED.is_dir() and ("../shared" in reason or str(SHARED) in reason):
        return f"../shared is at {SHARED}, yet a test skipped for lack of it"
    if SHARED.is_dir() and marked_shared and "got empty parameter set" in reason:
        return f"../shared is at {SHARED}, yet a parity test found nothing in it to run"
    if in_ci() and CI_INSTALLS in reason:
        return "CI=true: .ci/run installs what this test needs, so it must run, not skip"
    return None
