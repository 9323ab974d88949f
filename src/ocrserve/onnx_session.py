"""ONNX Runtime sessions with controlled threading and memory, for every model family on it.

Memory is chosen, not left to the arena: by default ONNX Runtime's CPU arena keeps, for the
life of the process, what the largest input ever needed (one 16-megapixel page raised a
worker's floor by over a gigabyte). The policies (`MEMORY_POLICIES`, measured side by side in
docs/benchmarks.md#memory) are:

- ``arena``: ONNX Runtime's defaults (arena, memory patterns): what grew stays;
- ``shrink``: the arena, extended by what each run asks, and shrunk back after every run
  (``memory.enable_memory_arena_shrinkage``): a large input's buffers are given back;
- ``plain``: no arena and no memory patterns: every buffer is malloc'd and freed per run.

``OCRSERVE_ORT_MEMORY`` overrides the policy of every session (for the benchmark).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import onnxruntime as ort

from ocrserve.errors import ModelLoadError

__all__ = ["DEFAULT_MEMORY", "MEMORY_POLICIES", "Session", "create_session"]

MEMORY_POLICIES = ("arena", "shrink", "plain")
#: What every session uses unless told otherwise (the measurements that chose it:
#: docs/benchmarks.md#memory).
DEFAULT_MEMORY = "shrink"


class Session:
    """An ``ort.InferenceSession`` whose ``run`` applies its memory policy's run options;
    everything else is the session's own."""

    def __init__(self, session: ort.InferenceSession, memory: str) -> None:
        self.session, self.memory = session, memory
        self._run_options: ort.RunOptions | None = None
        if memory == "shrink":
            self._run_options = ort.RunOptions()
            self._run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")

    def run(self, outputs: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        return list(self.session.run(outputs, feeds, self._run_options))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session, name)


def create_session(path: Path, threads: int, memory: str | None = None) -> Session:
    """A CPU session using ``threads`` intra-op threads and no inter-op parallelism, with the
    memory policy ``memory`` (default: ``OCRSERVE_ORT_MEMORY``, else `DEFAULT_MEMORY`).

    Intra-op threads sleep between operators instead of spinning: spinning threads of workers
    that share cores slow each other down by 2x or more (measured on 2 cores).
    """
    memory = memory or os.environ.get("OCRSERVE_ORT_MEMORY") or DEFAULT_MEMORY
    if memory not in MEMORY_POLICIES:
        raise ModelLoadError(
            f"Unknown ONNX Runtime memory policy {memory!r} (one of {', '.join(MEMORY_POLICIES)})."
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, threads)
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers: list[Any] = ["CPUExecutionProvider"]
    if memory == "plain":
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
    elif memory == "shrink":
        opts.enable_mem_pattern = False  # a pattern is planned per input shape, then kept
        providers = [("CPUExecutionProvider", {"arena_extend_strategy": "kSameAsRequested"})]
    try:
        session = ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelLoadError(f"Cannot load ONNX model {path.name}: {exc}") from exc
    return Session(session, memory)
