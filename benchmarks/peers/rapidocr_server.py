#!/usr/bin/env python3
"""rapidocr 3.10's own pipeline behind a minimal HTTP server of the same kind as ocrserve's.

The comparison server of `benchmarks/peers.py`: uvicorn (the ASGI server ocrserve runs) with a
Starlette app, ``PUT``/``POST /predictions/rapidocr`` taking the image bytes and answering in
the ``ocr`` model's format (``{"result": [{"box", "box_score", "text", "text_score"}, ...]}``;
RapidOCR gives no box score: 1.0), ``GET /ping`` once the engine is loaded and warm.

Like ocrserve's default (one worker per model using every core), one RapidOCR engine answers
one request at a time on a single worker thread, its ONNX Runtime sessions with ``--threads``
intra-op threads and one inter-op thread; the event loop only reads requests and writes
answers. ``--param KEY=VALUE`` passes RapidOCR parameters (``Det.limit_side_len=960``, ...;
values parsed as JSON where they parse); ``--no-spinning`` gives its ONNX Runtime sessions
ocrserve's sleeping intra-op threads, which RapidOCR's config cannot set.
``--record-shapes FILE`` appends the detector's network input shape of every request to FILE
(one JSON line each, with the image's size), to check what it ran.

Usage: python benchmarks/peers/rapidocr_server.py --port 9000 [--threads 2] [--param K=V ...]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import uvicorn
from PIL import Image
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

WARMUP = Path(__file__).resolve().parents[2] / "demo" / "demo_text_det.jpg"


def parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings -> RapidOCR params (JSON values where they parse)."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def sleeping_threads() -> None:
    """Make RapidOCR's ONNX Runtime sessions use ocrserve's setting: intra-op threads sleep
    between operators instead of spinning (RapidOCR's config has no key for it)."""
    from rapidocr.inference_engine.onnxruntime import main as ort_main

    init = ort_main.OrtInferSession._init_sess_opts

    def init_sess_opts(cfg: Any) -> Any:
        opts = init(cfg)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return opts

    ort_main.OrtInferSession._init_sess_opts = staticmethod(init_sess_opts)


def build_engine(threads: int, params: dict[str, Any], record: Path | None) -> Any:
    from rapidocr import RapidOCR

    engine = RapidOCR(
        params={
            "Global.log_level": "warning",
            "EngineConfig.onnxruntime.intra_op_num_threads": threads,
            "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            **params,
        }
    )
    if record is not None:
        det = engine._load_det_model()
        session = det.session
        run = session.__call__

        class Recording:
            def __call__(self, x: Any) -> Any:
                with record.open("a") as f:
                    line = {"image": engine.current_size, "det_input": list(x.shape)}
                    f.write(json.dumps(line) + "\n")
                return run(x)

            def __getattr__(self, name: str) -> Any:
                return getattr(session, name)

        det.session = Recording()
        engine.current_size = None
    return engine


def answer(engine: Any, body: bytes) -> dict[str, Any]:
    """The ``ocr`` model's answer format from RapidOCR's output."""
    if hasattr(engine, "current_size"):  # recording shapes: the image's W x H
        engine.current_size = list(Image.open(io.BytesIO(body)).size)
    out = engine(body, use_det=True, use_cls=True, use_rec=True)
    lines = zip(out.boxes, out.txts, out.scores) if out.txts else []
    return {
        "result": [
            {
                "box": [round(float(v), 1) for pt in box for v in pt],
                "box_score": 1.0,
                "text": text,
                "text_score": float(score),
            }
            for box, text, score in lines
        ]
    }


def make_app(engine: Any) -> Starlette:
    pool = ThreadPoolExecutor(1, thread_name_prefix="rapidocr")

    async def predict(request: Request) -> JSONResponse:
        body = await request.body()
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(pool, answer, engine, body)
        except Exception as exc:  # noqa: BLE001 - any failure is a 500 with its reason
            return JSONResponse({"code": 500, "message": repr(exc)}, status_code=500)
        return JSONResponse(result)

    async def ping(request: Request) -> JSONResponse:
        return JSONResponse({"status": "Healthy"})

    routes = [
        Route("/predictions/rapidocr", predict, methods=["PUT", "POST"]),
        Route("/ping", ping, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--param", action="append", default=[], help="RapidOCR KEY=VALUE")
    ap.add_argument("--record-shapes", type=Path)
    ap.add_argument("--no-spinning", action="store_true", help="sleeping ONNX Runtime threads")
    args = ap.parse_args()
    if args.no_spinning:
        sleeping_threads()
    engine = build_engine(args.threads, parse_params(args.param), args.record_shapes)
    answer(engine, WARMUP.read_bytes())  # load every model before /ping answers
    if args.record_shapes is not None:
        args.record_shapes.write_text("")
    uvicorn.run(make_app(engine), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
