"""Pinned dependencies: ONNX Runtime runs every bundled model, so pyproject.toml pins the version
the benchmarks and accuracy figures were measured on, and the benchmark records name it."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import version

from tests.conftest import REPO


def test_onnxruntime_is_pinned_to_the_installed_version() -> None:
    pins = re.findall(r'"onnxruntime([^"]*)"', (REPO / "pyproject.toml").read_text())
    assert pins == [f"=={version('onnxruntime')}"], pins


def test_benchmark_records_name_the_onnxruntime_version() -> None:
    spec = importlib.util.spec_from_file_location("harness", REPO / "benchmarks" / "harness.py")
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(harness)
    assert harness.machine()["onnxruntime"] == version("onnxruntime")
