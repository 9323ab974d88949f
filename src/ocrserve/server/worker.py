"""The worker process: load one model, then answer batches sent over a pipe until it closes.

The wire format is deliberately not pickle: the engine sends a JSON header ``{"n": k,
"batch": id}`` (with ``"options"``, one dict per body, when a request set any) followed by
``k`` raw request bodies as byte frames; the worker answers with one JSON frame
``{"results": [{"ok": result} | {"error": [type, message]}, ...]}``, preceded, when the batch
holds a document, by event frames that follow its pages (`_answer`). While a batch runs the
engine may send ``{"cancel": [indexes], "batch": id}``. So nothing a client sent is ever
unpickled, in this process or the server's. Decoding happens here, off the event loop.

This module imports nothing heavy at top level: thread-count variables must be set before
numpy, OpenCV or ONNX Runtime are first imported in the child.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from ocrserve.archives.spec import ModelSpec
from ocrserve.settings import InputLimits

__all__ = [
    "READY",
    "WorkerMemory",
    "limit_threads",
    "set_torch_threads",
    "tune_malloc",
    "worker_main",
]

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


#: ``emit(frame)``: sends one event frame to the engine while a batch is being answered.
Emit = Callable[[dict[str, Any]], None]


def _answer(
    predictor: Any,
    bodies: list[bytes],
    limits: InputLimits,
    options: list[dict[str, Any]] | None = None,
    emit: Emit | None = None,
    cancelled: Callable[[int], bool] | None = None,
) -> list[dict[str, Any]]:
    """One answer per body. Images with the same options go through the model as one batch;
    a document (a PDF, a multi-page TIFF) is read page by page (`ocrserve.documents`) and
    answered as ``{"pages": [...]}``. The document options (``dpi``, ``pages``, ...) go to the
    reader, the others to the predictor (`ocrserve.options`).

    With ``emit`` (a worker process) the engine follows a document as it is read: once the
    images are answered (when a document follows), ``{"event": "answer", "index", "answer"}``
    for each; then per document ``{"event": "document", "index", "pages": [numbers]}`` when
    it is opened, ``{"event": "page", "index", "page": entry}`` per page, and the document's
    answer ``{"pages_sent": n}`` (the pages are the engine's to gather). ``cancelled(index)``
    is asked before each page: a document whose client went away stops there. Without
    ``emit`` (a Ray replica) a document's answer holds its pages.
    """
    from ocrserve.documents.reader import PageSource, open_document
    from ocrserve.imaging import decode
    from ocrserve.options import parse_pages, split_options
    from ocrserve.predictor import predict_with

    out: list[dict[str, Any] | None] = [None] * len(bodies)
    groups: dict[str, tuple[dict[str, Any], list[Any], list[int]]] = {}
    documents: list[tuple[int, PageSource, dict[str, Any], dict[str, Any]]] = []
    try:
        for i, body in enumerate(bodies):
            document_options, model_options = split_options((options or [{}] * len(bodies))[i])
            try:
                read_limits = limits
                if "dpi" in document_options:
                    read_limits = replace(limits, dpi=int(document_options["dpi"]))
                pages = document_options.get("pages")
                source = open_document(
                    body,
                    read_limits,
                    exif_orientation=predictor.exif_orientation,
                    pages=parse_pages(pages) if pages else None,
                )
                if source is not None:
                    documents.append((i, source, document_options, model_options))
                    continue
                exif = predictor.exif_orientation
                decoded = decode(body, limits.max_pixels, exif_orientation=exif)
            except Exception as exc:  # each bad input fails alone
                out[i] = _error(exc)
                continue
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
            images.clear()
        if emit is not None and documents:
            for i, answer in enumerate(out):
                if answer is not None:
                    emit({"event": "answer", "index": i, "answer": answer})
                    out[i] = {"sent": True}
        for i, source, document_options, model_options in documents:
            out[i] = _read_document(
                predictor, i, source, document_options, model_options, emit, cancelled
            )
    finally:
        for _, source, _, _ in documents:
            source.close()
    return [o if o is not None else {"error": ["InternalServerError", "no result"]} for o in out]


def _read_document(
    predictor: Any,
    index: int,
    source: Any,
    document_options: dict[str, Any],
    model_options: dict[str, Any],
    emit: Emit | None,
    cancelled: Callable[[int], bool] | None,
) -> dict[str, Any]:
    """One document's answer (see `_answer`)."""
    from ocrserve.documents.reading import read_pages

    gathered: list[dict[str, Any]] = []
    if emit is not None:
        emit({"event": "document", "index": index, "pages": source.numbers})

    def page_done(entry: dict[str, Any]) -> None:
        if emit is not None:
            emit({"event": "page", "index": index, "page": entry})
        else:
            gathered.append(entry)

    try:
        sent = read_pages(
            predictor, source, model_options, page_done,
            text_layer=document_options.get("text_layer", "auto"),
            page_image=bool(document_options.get("page_image", False)),
            cancelled=(lambda: cancelled(index)) if cancelled is not None else lambda: False,
        )  # fmt: skip
    except Exception as exc:
        return _error(exc)
    finally:
        source.close()
    return {"pages_sent": sent} if emit is not None else {"ok": {"pages": gathered}}


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
    tune_malloc()
    try:
        _import_opencv().setNumThreads(threads)
        predictor = _build(spec, threads, gpu)
        set_torch_threads(threads)
    except BaseException as exc:
        conn.send_bytes(json.dumps({"status": "failed", **_error(exc)}).encode())
        conn.close()
        return
    device = str(getattr(predictor, "device", "cpu"))
    memory = WorkerMemory()
    conn.send_bytes(json.dumps({"status": READY, "pid": os.getpid(), "device": device}).encode())
    while True:
        try:
            header = conn.recv_bytes()
        except (EOFError, OSError):
            return
        msg = json.loads(header)
        if "n" not in msg:  # a cancel that came after its batch was answered
            continue
        bodies = [conn.recv_bytes() for _ in range(int(msg["n"]))]
        cancels = _Cancels(conn, msg.get("batch"))

        def emit(frame: dict[str, Any]) -> None:
            conn.send_bytes(json.dumps(frame).encode())

        results = _answer(predictor, bodies, limits, msg.get("options"), emit, cancels)
        del bodies
        rss = memory.after_batch()
        conn.send_bytes(json.dumps({"results": results, "rss": rss}).encode())


def _libc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    return ctypes.CDLL(name) if name else None


#: glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def tune_malloc() -> None:
    """Large blocks from the heap, kept there until the worker trims it (`WorkerMemory`): glibc
    otherwise maps each block over its threshold afresh and unmaps it when freed, so a model
    that frees its buffers after every run (`ocrserve.onnx_session`) would fault its pages in
    again on every run. Called before the model loads; glibc only (elsewhere nothing changes)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 1 << 30)
        mallopt(_M_TRIM_THRESHOLD, 1 << 30)


class WorkerMemory:
    """The worker's resident memory, given back after a batch that raised it.

    The model's buffers are freed after each run (`ocrserve.onnx_session`) into the heap
    (`tune_malloc`), which keeps them mapped for the next run. What ordinary batches need is
    the median resident size after the last `WINDOW` batches; a batch that leaves the worker
    `TRIM_STEP` above it (a large page, a long document) has ``malloc_trim`` return the free
    pages to the system (a few ms), so a large input does not raise the floor.
    """

    TRIM_STEP = 16 * 1024 * 1024
    WINDOW = 15

    def __init__(self) -> None:
        from collections import deque

        self._page = os.sysconf("SC_PAGE_SIZE")
        self._trim = getattr(_libc(), "malloc_trim", None)  # glibc only
        self.recent: deque[int] = deque(maxlen=self.WINDOW)

    def rss(self) -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * self._page
        except (OSError, ValueError, IndexError):
            return 0

    def after_batch(self) -> int:
        """The resident size after a batch, trimmed first when it is a step over the usual."""
        rss = self.rss()
        usual = sorted(self.recent)[len(self.recent) // 2] if self.recent else rss
        if self._trim is not None and rss > usual + self.TRIM_STEP:
            self._trim(0)
            rss = self.rss()
        self.recent.append(rss)
        return rss


class _Cancels:
    """Which bodies of the batch being answered the engine cancelled (their clients went away):
    ``{"cancel": [indexes], "batch": id}`` frames, read from the pipe between pages."""

    def __init__(self, conn: Connection, batch: Any) -> None:
        self.conn, self.batch = conn, batch
        self.indexes: set[int] = set()

    def __call__(self, index: int) -> bool:
        while self.conn.poll(0):
            msg = json.loads(self.conn.recv_bytes())
            if msg.get("batch") == self.batch:
                self.indexes.update(int(i) for i in msg.get("cancel", []))
        return index in self.indexes
