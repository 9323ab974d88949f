"""The worker process: load one model, then answer batches sent over a pipe until it closes.

The wire format is deliberately not pickle: the engine sends a JSON header ``{"n": k}`` (with
``"options"``, one dict per body, when a request set any) followed by ``k`` raw request bodies
as byte frames; the worker answers with one JSON frame
``{"results": [{"ok": result} | {"error": [type, message]}, ...]}``. So nothing a client sent is
ever unpickled, in this process or the server's. Decoding happens here, off the event loop.

This module imports nothing heavy at top level: thread-count variables must be set before
numpy, OpenCV or ONNX Runtime are first imported in the child.
"""

from __future__ import annotations

import json
import os
import signal
from multiprocessing.connection import Connection
from typing import Any

from ocrserve.archives.spec import ModelSpec
from ocrserve.settings import InputLimits

__all__ = ["READY", "limit_threads", "set_torch_threads", "worker_main"]

READY = "ready"

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_threads(threads: int) -> None:
    """Thread counts for the numeric libraries, set before they load; idle threads sleep.

    OpenMP's default waiting policy spins, which turns a few workers sharing cores (or any
    other busy process) into a slowdown of 2x or worse; passive waiting costs a few percent.
    """
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _build(spec: ModelSpec, threads: int, gpu: int | None) -> Any:
    from ocrserve.archives.loader import load_predictor

    device = "cpu" if gpu is None else f"cuda:{gpu}"
    return load_predictor(spec.model_dir, threads, device=device, cpu_fallback=True)


def set_torch_threads(threads: int) -> None:
    """Pin PyTorch's pools when a model imported it (results depend on the thread count)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _import_opencv() -> Any:
    """Import cv2, turning a missing display library into a message with the fix."""
    try:
        import cv2
    except ImportError as exc:
        from ocrserve.errors import ModelLoadError

        raise ModelLoadError(
            f"OpenCV cannot be imported ({exc}). On a machine without display libraries "
            "replace the GUI build with the headless one: pip uninstall -y opencv-python && "
            "pip install opencv-python-headless"
        ) from exc
    return cv2


def _error(exc: BaseException) -> dict[str, Any]:
    from ocrserve.errors import OcrServeError, error_name

    if isinstance(exc, OcrServeError):
        return {"error": [error_name(exc), exc.message]}
    return {"error": ["InternalServerError", f"{type(exc).__name__}: {exc}"]}


def _answer(
    predictor: Any,
    bodies: list[bytes],
    limits: InputLimits,
    options: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One answer per body. Images with the same options go through the model as one batch;
    the pages of each document (a PDF, a multi-page TIFF) as a batch of their own, answered as
    ``{"pages": [...]}``. The document options (``dpi``, ``pages``) go to the reader, the
    others to the predictor (`ocrserve.options`)."""
    from dataclasses import replace

    from ocrserve.imaging import Document, decode_input
    from ocrserve.options import parse_pages, split_options
    from ocrserve.predictor import predict_with

    out: list[dict[str, Any] | None] = [None] * len(bodies)
    groups: dict[str, tuple[dict[str, Any], list[Any], list[int]]] = {}
    documents: list[tuple[int, Document, dict[str, Any]]] = []
    for i, body in enumerate(bodies):
        document_options, model_options = split_options((options or [{}] * len(bodies))[i])
        try:
            read_limits = limits
            if "dpi" in document_options:
                read_limits = replace(limits, dpi=int(document_options["dpi"]))
            pages = document_options.get("pages")
            decoded = decode_input(
                body,
                read_limits,
                exif_orientation=predictor.exif_orientation,
                pages=parse_pages(pages) if pages else None,
            )
        except Exception as exc:  # each bad input fails alone
            out[i] = _error(exc)
            continue
        if isinstance(decoded, Document):
            documents.append((i, decoded, model_options))
        else:
            key = json.dumps(model_options, sort_keys=True)
            group = groups.setdefault(key, (model_options, [], []))
            group[1].append(decoded)
            group[2].append(i)
    for model_options, images, where in groups.values():
        try:
            results = predict_with(predictor, images, model_options)
            for i, res in zip(where, results):
                out[i] = {"ok": res}
        except Exception as exc:
            for i in where:
                out[i] = _error(exc)
    for i, document, model_options in documents:
        try:
            results = predict_with(predictor, document, model_options)
            out[i] = {"ok": {"pages": _pages(document, results)}}
        except Exception as exc:
            out[i] = _error(exc)
    return [o if o is not None else {"error": ["InternalServerError", "no result"]} for o in out]


def _pages(document: Any, results: list[Any]) -> list[dict[str, Any]]:
    """Each page's answer with its number (from 1) and its size in pixels as the model saw it."""
    out = []
    for number, page, res in zip(document.numbers, document, results):
        height, width = page.shape[:2]
        answer = res if isinstance(res, dict) else {"result": res}
        out.append({"page": number, "width": int(width), "height": int(height), **answer})
    return out


def _redirect_output(log_dir: str | None, wid: int, name: str) -> None:
    """Send the worker's stdout/stderr (Python and native libraries alike) to model_log.log."""
    if not log_dir:
        return
    try:
        os.makedirs(log_dir, exist_ok=True)
        fd = os.open(os.path.join(log_dir, "model_log.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    except OSError:
        return
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    print(f"worker {wid} of model {name} started (pid {os.getpid()})", flush=True)


def worker_main(
    conn: Connection,
    spec: ModelSpec,
    threads: int,
    limits: InputLimits,
    log_dir: str | None = None,
    wid: int = 0,
    gpu: int | None = None,
) -> None:
    """Entry point of a worker process."""
    _redirect_output(log_dir, wid, spec.name)
    limit_threads(threads)
    # Ctrl-C reaches the whole process group: the server handles it and kills its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _import_opencv().setNumThreads(threads)
        predictor = _build(spec, threads, gpu)
        set_torch_threads(threads)
    except BaseException as exc:
        conn.send_bytes(json.dumps({"status": "failed", **_error(exc)}).encode())
        conn.close()
        return
    device = str(getattr(predictor, "device", "cpu"))
    conn.send_bytes(json.dumps({"status": READY, "pid": os.getpid(), "device": device}).encode())
    while True:
        try:
            header = conn.recv_bytes()
        except (EOFError, OSError):
            return
        msg = json.loads(header)
        bodies = [conn.recv_bytes() for _ in range(int(msg["n"]))]
        results = _answer(predictor, bodies, limits, msg.get("options"))
        conn.send_bytes(json.dumps({"results": results}).encode())
