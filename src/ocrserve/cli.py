"""The ``ocrserve`` command: ``start`` (in the background like ``torchserve --start``, or
``--foreground``), ``stop``, ``key``, ``archive``, ``compose``, ``predict``, ``compare``,
``request``.
Options of ``start`` are generated from `Settings` fields, one to one; ``stop`` and ``key`` find
the server from the same settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ocrserve.archives.store import ModelStore
from ocrserve.client.request_command import add_request_parser, run_request
from ocrserve.compare.runner import add_compare_parser
from ocrserve.errors import ConfigError, OcrServeError
from ocrserve.ppocr import SETTINGS_PRESETS
from ocrserve.server.instance import (
    ServerRecord,
    find_key_file,
    read_key,
    read_pid,
    server_command,
)
from ocrserve.settings import Settings
from ocrserve.version import __version__

__all__ = ["main"]

#: ``--models`` is TorchServe's flag for load_models, so the models JSON key gets another.
_FLAG_NAMES = {"models": "--models-json"}
_FLAG_ALIASES = {
    "load_models": ["--models"],
    "model_store": ["--model-store"],
    "disable_token_authorization": ["--disable-token-auth"],
}
#: What one value of a list setting is.
_METAVARS = {"load_models": "MODEL", "allowed_urls": "REGEX"}
#: The modules of the ``torch`` extra: MMOCR models run in PyTorch and export to ONNX with onnx.
_TORCH_EXTRA = ("torch", "onnx")
#: How to install the ``torch`` extra. pip's default torch wheel is the CUDA build (5 GB of
#: nvidia-* wheels on a machine with no GPU); PyTorch's own index has the CPU build.
TORCH_INSTALL = (
    "pip install -e '.[torch]' torch==2.13.0 (on a CPU-only machine add --extra-index-url "
    "https://download.pytorch.org/whl/cpu)"
)


def _add_settings_options(parser: argparse.ArgumentParser) -> None:
    for f in Settings.fields():
        primary = _FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
        flags = [primary, *_FLAG_ALIASES.get(f.name, [])]
        flags = list(dict.fromkeys(flags))
        help_text = f"{f.metadata['help']} Default: {f.default!r}."
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(
                *flags,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        elif kind.startswith("tuple"):
            parser.add_argument(
                *flags, dest=f.name, nargs="+", default=None, metavar=_METAVARS[f.name],
                help=help_text,
            )  # fmt: skip
        elif kind in ("int", "float"):
            parser.add_argument(
                *flags, dest=f.name, type=int if kind == "int" else float, default=None,
                help=help_text,
            )  # fmt: skip
        else:
            parser.add_argument(*flags, dest=f.name, default=None, help=help_text)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """Which server ``stop`` and ``key`` mean: the options ``start`` was given."""
    parser.add_argument(
        "--ts-config", dest="ts_config", default=None,
        help="The config.properties the server was started with.",
    )  # fmt: skip
    parser.add_argument(
        "--inference-address", dest="inference_address", default=None, metavar="URL",
        help="The server's inference address (http://HOST:PORT or HOST:PORT). Default: "
        "http://127.0.0.1:8080.",
    )  # fmt: skip
    parser.add_argument(
        "--pid-file", dest="pid_file", default=None,
        help="The server's pid file. Default: derived from the inference address.",
    )  # fmt: skip


def _server_settings(args: argparse.Namespace) -> Settings:
    cli = {"inference_address": args.inference_address, "pid_file": args.pid_file}
    return Settings.load(cli, args.ts_config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocrserve", description="Serve OCR models over TorchServe's REST API."
    )
    parser.add_argument("--version", action="version", version=f"ocrserve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser(
        "start",
        help="start the server (in the background unless --foreground)",
        description="Start the server. With no options it serves the bundled PP-OCRv6 models "
        "(ppocr_det, ppocr_rec, ocr) on 127.0.0.1:8080.",
    )
    start.add_argument(
        "--ts-config", dest="ts_config", default=None, help="A TorchServe config.properties file."
    )
    start.add_argument(
        "--foreground",
        action="store_true",
        help="Stay attached (log to stderr) instead of starting in the background.",
    )
    _add_settings_options(start)
    archive = sub.add_parser(
        "archive",
        help="pack an MMOCR config + checkpoint, or PaddleOCR ONNX models, into .mar files",
        description="MMOCR: ocrserve archive CONFIG CHECKPOINT writes NAME.mar (the config as "
        "JSON, the weights as safetensors; mmocr2torchserve's job). PaddleOCR (PP-OCRv3 to v6 "
        "ONNX): ocrserve archive --det DET.onnx --rec REC.onnx [--cls CLS.onnx] [--dict FILE] "
        "writes NAME_det.mar, NAME_rec.mar and NAME.mar (end to end), as the files allow. "
        "Nothing in an archive is code or a pickle.",
    )
    archive.add_argument(
        "config", nargs="?", help="MMOCR config (.py, read as data, never executed)"
    )
    archive.add_argument(
        "checkpoint", nargs="?", help="MMOCR checkpoint (.pth, weights only) or .safetensors"
    )
    archive.add_argument("--output-folder", required=True, help="Folder for the .mar files.")
    archive.add_argument(
        "--model-name",
        default=None,
        help="Name of the model and the file; default: the checkpoint's stem (MMOCR) or "
        "'ppocr' (PaddleOCR: NAME_det, NAME_rec and NAME for end to end).",
    )
    archive.add_argument("--model-version", default="1.0", help="Version. Default: 1.0.")
    archive.add_argument("-f", "--force", action="store_true", help="Overwrite existing files.")
    archive.add_argument(
        "--runtime",
        choices=["torch", "onnx"],
        default=None,
        help="MMOCR: engine that runs the network when served: torch, or onnx (ONNX Runtime; "
        "exported and checked against PyTorch at archive time). Default: torch. PaddleOCR "
        "models always run on ONNX Runtime.",
    )
    archive.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE", dest="options",
        help="Pin a request option (e.g. max_side=1280) to this value: requests may not "
        "change it. Repeatable. The options: docs/options.md.",
    )  # fmt: skip
    int8 = archive.add_argument_group(
        "int8 (docs/archives.md#int8)",
        "Quantize the ONNX networks (ONNX Runtime static quantization, QDQ, per-channel "
        "weights), measure int8 against FP32 on the calibration images and refuse the "
        "archive beyond the budget; the manifest records the measurement.",
    )
    int8.add_argument(
        "--quantize", choices=["int8"], default=None,
        help="int8: quantize every detector and recognizer network (MMOCR: implies "
        "--runtime onnx).",
    )  # fmt: skip
    int8.add_argument(
        "--calibration", default=None, metavar="DIR",
        help="Folder of full page images like those the model will serve (not crops): "
        "detectors calibrate on them, recognizers on the detector's line crops of them.",
    )  # fmt: skip
    int8.add_argument(
        "--accuracy-budget", type=float, default=None, metavar="POINTS",
        help="Most disagreement with FP32 allowed, in points (detection H-mean vs FP32 "
        "boxes, recognition text agreement); beyond it nothing is written. Default: 1.",
    )  # fmt: skip
    paddle = archive.add_argument_group(
        "Detector and recognizer parts (instead of CONFIG CHECKPOINT)",
        "All PaddleOCR ONNX files: NAME_det.mar, NAME_rec.mar and NAME.mar (end to end). Any "
        "part an archive (.mar) or an MMOCR CONFIG CHECKPOINT pair: one end-to-end NAME.mar, "
        "as ocrserve compose writes.",
    )
    paddle.add_argument(
        "--det", default=None, nargs="+", metavar="DET",
        help="Text detector: DB .onnx (PaddleOCR), .mar, or MMOCR CONFIG CHECKPOINT.",
    )  # fmt: skip
    paddle.add_argument(
        "--rec", default=None, nargs="+", metavar="REC",
        help="Text recognizer: CTC .onnx (PaddleOCR), .mar, or MMOCR CONFIG CHECKPOINT.",
    )  # fmt: skip
    paddle.add_argument(
        "--cls", default=None, help="Text-angle classifier (.onnx), used end to end."
    )
    paddle.add_argument(
        "--dict",
        dest="dict_file",
        default=None,
        help="The recognizer's dictionary (one character per line); default: the "
        "'character' list in the recognizer's ONNX metadata.",
    )
    paddle.add_argument(
        "--ppocr-settings",
        choices=sorted(SETTINGS_PRESETS),
        default="v6",
        help="Detection and recognition settings written into the archives: v6 (the bundled "
        "models') or v4 (PaddleOCR's published defaults, for PP-OCRv3/v4/v5). Default: v6.",
    )
    paddle.add_argument(
        "--ppocr-config",
        default=None,
        metavar="JSON",
        help='A JSON file whose keys override those settings, e.g. {"det": {"unclip_ratio": 1.5}}.',
    )
    compose = sub.add_parser(
        "compose",
        help="compose a detector and a recognizer archive into one end-to-end .mar",
        description="ocrserve compose --det DET.mar --rec REC.mar [--cls CLS.onnx] "
        "--output-folder DIR --model-name NAME writes NAME.mar, served like the ocr model "
        "(boxes and texts in reading order). The parts are archives of either family: "
        "ocrserve archive CONFIG CHECKPOINT (MMOCR), ocrserve archive --det/--rec (PaddleOCR); "
        "an MMOCR part may also be given as its CONFIG CHECKPOINT pair.",
    )
    compose.add_argument(
        "--det", required=True, nargs="+", metavar="DET",
        help="Text detector: an archive (.mar), or an MMOCR CONFIG CHECKPOINT pair.",
    )  # fmt: skip
    compose.add_argument(
        "--rec", required=True, nargs="+", metavar="REC",
        help="Text recognizer: an archive (.mar), or an MMOCR CONFIG CHECKPOINT pair.",
    )  # fmt: skip
    compose.add_argument(
        "--cls", default=None, help="PaddleOCR text-angle classifier (.onnx), optional."
    )
    compose.add_argument("--output-folder", required=True, help="Folder for NAME.mar.")
    compose.add_argument("--model-name", required=True, help="Name of the model and the file.")
    compose.add_argument("--model-version", default="1.0", help="Version. Default: 1.0.")
    compose.add_argument(
        "--rec-batch", type=int, default=16,
        help="Crops per recognizer call (sorted by aspect ratio first). Default: 16.",
    )  # fmt: skip
    compose.add_argument(
        "--drop-score", type=float, default=0.0,
        help="Drop lines recognised with a lower score. Default: 0 (keep every line).",
    )  # fmt: skip
    compose.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE", dest="options",
        help="Pin a request option (e.g. drop_score=0.5) to this value. Repeatable.",
    )  # fmt: skip
    compose.add_argument("-f", "--force", action="store_true", help="Overwrite NAME.mar.")
    predict = sub.add_parser(
        "predict",
        help="run a model locally and print its results as JSON",
        description="ocrserve predict CONFIG CHECKPOINT IMAGE... or ocrserve predict MODEL.mar "
        "IMAGE...: MMOCR's model_inference result per image (one image: the result; several: "
        "a JSON object mapping each path to its result).",
        usage="ocrserve predict [options] (CONFIG CHECKPOINT | MODEL.mar) IMAGE [IMAGE ...]",
    )
    predict.add_argument(
        "inputs", nargs="+", metavar="INPUT",
        help="The model (an MMOCR CONFIG and CHECKPOINT, or an archive MODEL.mar), then the "
        "images.",
    )  # fmt: skip
    predict.add_argument("--device", default="cpu", help="cpu or cuda[:N]. Default: cpu.")
    predict.add_argument(
        "--threads", type=int, default=0,
        help="CPU threads (0: all cores). Results can differ in the last float bits between "
        "thread counts; use a served model's cpuThreads (describe) to reproduce it exactly.",
    )  # fmt: skip
    add_compare_parser(sub)
    add_request_parser(sub)
    key = sub.add_parser(
        "key",
        help="print a key of a running server (for Authorization: Bearer ...)",
        description="Print the current key of the server named by --inference-address, "
        "--ts-config or --pid-file as it was started (default: the one on 127.0.0.1:8080, "
        'else ./key_file.json), e.g. curl -H "Authorization: Bearer $(ocrserve key)" ... '
        "An expired key is an error saying how to get a new one.",
    )
    key.add_argument(
        "--type", choices=["inference", "management", "API"], default="inference",
        help="Which key: inference (predictions), management (the management API) or API "
        "(GET /token, to make new keys). Default: inference.",
    )  # fmt: skip
    key.add_argument(
        "--key-file",
        default=None,
        help="Read this key file instead of finding the server's.",
    )
    _add_server_options(key)
    stop = sub.add_parser(
        "stop",
        help="stop a background server gracefully",
        description="Stop the server named by --inference-address, --ts-config or --pid-file "
        "as it was started (default: the one on 127.0.0.1:8080); other servers keep running.",
    )
    _add_server_options(stop)
    stop.add_argument(
        "--timeout",
        type=float,
        default=150.0,
        help="Seconds to wait for in-flight requests. Default: 150.",
    )
    return parser


def _settings_from(args: argparse.Namespace) -> Settings:
    cli = {f.name: getattr(args, f.name) for f in Settings.fields()}
    if cli["load_models"] is not None:
        cli["load_models"] = tuple(cli["load_models"])
    return Settings.load(cli, args.ts_config)


def _model_store(settings: Settings) -> ModelStore:
    from ocrserve.archives.bundled import ensure_bundled_store

    root = Path(settings.model_store) if settings.model_store else None
    if root is not None and not root.is_dir():
        raise ConfigError(f"model_store={settings.model_store!r}: not a folder")
    return ModelStore(root, ensure_bundled_store)


def _load_models(settings: Settings) -> tuple[str, ...]:
    """What to load: ``load_models``; with neither it nor a model store, the bundled models."""
    if settings.load_models:
        return settings.load_models
    return () if settings.model_store else ("all",)


def _check_models(settings: Settings) -> list[str]:
    """Fail fast on a model that cannot be found (the server would only log it); the names the
    models will be served under, as far as the command line says."""
    store = _model_store(settings)
    names = []
    try:
        for name, location in store.entries(_load_models(settings)):
            store.locate(location)
            names.append(name or Path(location).name.removesuffix(".mar"))
    finally:
        store.close()
    return names


def _configure_logging(settings: Settings) -> None:
    """Server messages to stderr; one line per request to LOG_LOCATION/access_log.log."""
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    log_dir = Path(os.environ.get("LOG_LOCATION") or settings.log_location)
    log_dir.mkdir(parents=True, exist_ok=True)
    access = logging.getLogger("ocrserve.access")
    handler = logging.FileHandler(log_dir / "access_log.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    access.addHandler(handler)
    access.propagate = False


def _run_foreground(settings: Settings) -> int:
    from ocrserve.server.app import serve

    _configure_logging(settings)
    _check_models(settings)
    store = _model_store(settings)
    pid_path = settings.pid_path()
    owner = read_pid(pid_path)
    wrote_pid = owner is None or owner == os.getpid()
    if wrote_pid:
        ServerRecord.of_this_process(settings).write(pid_path)
    try:
        specs, failures = store.prepare_all(_load_models(settings))
        asyncio.run(serve(settings, store, specs, failures))
    finally:
        store.close()
        if wrote_pid and read_pid(pid_path) in (os.getpid(), None):
            ServerRecord.remove(pid_path)
    return 0


def _tail(path: Path, lines: int = 15) -> str:
    return "\n  ".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop_child(child: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    child.terminate()
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _start_background(settings: Settings, argv: Sequence[str]) -> int:
    from ocrserve.server.startup import StartupWatch

    pid_path = settings.pid_path()
    running = read_pid(pid_path)
    if running is not None:
        print(
            f"ocrserve is already running at {settings.inference_address} (pid {running}, "
            f"pid file {pid_path}); stop it with: ocrserve stop --inference-address "
            f"{settings.inference_address}",
            file=sys.stderr,
        )
        return 1
    names = _check_models(settings)
    log_dir = Path(settings.log_location)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "ocrserve.log"
    with open(log_path, "ab") as log:
        child = subprocess.Popen(
            server_command("start", "--foreground", *argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    watch = StartupWatch(settings, names)
    limit = settings.default_startup_timeout + 30
    started = time.monotonic()
    shown, shown_at = "", started
    try:
        while time.monotonic() - started < limit:
            if child.poll() is not None:
                print(f"ocrserve failed to start:\n  {_tail(log_path)}", file=sys.stderr)
                return 1
            state = watch.poll()
            if state.healthy:
                print(
                    f"ocrserve started (pid {child.pid}); inference API at "
                    f"{settings.inference_address}; log: {log_path}"
                )
                return 0
            if state.failed:
                _stop_child(child)
                reasons = "\n  ".join(f"{n}: {why}" for n, why in state.failed.items())
                print(
                    f"ocrserve failed to start: {len(state.failed)} model(s) cannot load "
                    f"(stopped the server; log: {log_path}):\n  {reasons}",
                    file=sys.stderr,
                )
                return 1
            line = state.progress()
            now = time.monotonic()
            if line != shown or now - shown_at >= 10:
                print(f"{line} [{now - started:.0f} s]", file=sys.stderr, flush=True)
                shown, shown_at = line, now
            time.sleep(0.3)
    finally:
        watch.close()
    _stop_child(child)
    print(
        f"ocrserve did not become healthy within {limit} s (stopped it); last lines of "
        f"{log_path}:\n  {_tail(log_path)}",
        file=sys.stderr,
    )
    return 1


def _stop(settings: Settings, timeout: float) -> int:
    path = settings.pid_path()
    pid = read_pid(path)
    if pid is None:
        print(
            f"ocrserve is not running at {settings.inference_address} (no live server in "
            f"{path}); name the server as it was started: --inference-address, --ts-config or "
            "--pid-file",
            file=sys.stderr,
        )
        return 1
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            ServerRecord.remove(path)
            print(f"ocrserve at {settings.inference_address} (pid {pid}) has stopped.")
            return 0
        time.sleep(0.2)
    print(f"ocrserve (pid {pid}) did not stop within {timeout:g} s", file=sys.stderr)
    return 1


def _predict(inputs: list[str], device: str, threads: int) -> int:
    import json
    import tempfile

    from ocrserve.imaging import decode
    from ocrserve.server.worker import limit_threads, set_torch_threads

    threads = threads or os.cpu_count() or 1
    limit_threads(threads)

    if inputs[0].endswith(".mar"):
        model_args, images = inputs[:1], inputs[1:]
    else:
        model_args, images = inputs[:2], inputs[2:]
    if not images or len(model_args) < 2 and not model_args[0].endswith(".mar"):
        raise ConfigError("usage: ocrserve predict CONFIG CHECKPOINT IMAGE... | MODEL.mar IMAGE...")
    with tempfile.TemporaryDirectory(prefix="ocrserve-predict-") as tmp:
        if len(model_args) == 1:
            from ocrserve.archives.loader import load_predictor
            from ocrserve.archives.mar import extract_archive

            extract_archive(model_args[0], tmp)
            predictor = load_predictor(tmp, threads=threads, device=device)
        else:
            from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

            predictor = MMOCRPredictor.from_files(model_args[0], model_args[1], device=device)
        set_torch_threads(threads)
        results = {}
        for path in images:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"cannot read image {path}: {exc.strerror}") from exc
            image = decode(data, Settings().max_image_pixels,
                           exif_orientation=predictor.exif_orientation)  # fmt: skip
            results[path] = predictor.predict([image])[0]
    out = next(iter(results.values())) if len(results) == 1 else results
    print(json.dumps(out, ensure_ascii=False))
    return 0


def _pinned(pairs: list[str]) -> dict[str, str]:
    """``--option NAME=VALUE`` flags as a dict (values are checked against the task later)."""
    from ocrserve.options import OPTIONS

    known = {o.name for o in OPTIONS}
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--option {pair}: expected NAME=VALUE")
        if name not in known:
            options = ", ".join(sorted(known))
            raise ConfigError(f"--option {pair}: unknown option; options: {options}")
        out[name] = value.strip()
    return out


def _archive(args: argparse.Namespace) -> int:
    """MMOCR config + checkpoint, or PaddleOCR ONNX files; with ``--quantize int8`` the archives
    are written to a scratch folder first, quantized, and moved only when every one passed."""
    if args.quantize is None:
        if args.calibration is not None or args.accuracy_budget is not None:
            raise ConfigError("--calibration and --accuracy-budget go with --quantize int8")
        return _archive_fp32(args)
    if args.calibration is None:
        raise ConfigError(
            "--quantize int8 needs --calibration DIR: a folder of page images like those the "
            "model will serve"
        )
    if args.runtime == "torch":
        raise ConfigError("--quantize int8 quantizes ONNX networks: use --runtime onnx")
    import contextlib
    import io
    import shutil
    import tempfile

    from ocrserve.int8.parts import DEFAULT_BUDGET, Int8Archiver

    budget = DEFAULT_BUDGET if args.accuracy_budget is None else args.accuracy_budget
    quantizer = Int8Archiver(
        args.calibration, budget, threads=len(os.sched_getaffinity(0)),
        progress=lambda m: print(m, file=sys.stderr, flush=True),
    )  # fmt: skip
    out_folder = Path(args.output_folder)
    with tempfile.TemporaryDirectory(prefix="ocrserve-archive-") as tmp:
        fp32_dir, int8_dir = Path(tmp) / "fp32", Path(tmp) / "int8"
        fp32_args = argparse.Namespace(**{**vars(args), "output_folder": str(fp32_dir)})
        fp32_args.runtime = "onnx" if args.config is not None else args.runtime
        with contextlib.redirect_stdout(io.StringIO()):
            _archive_fp32(fp32_args)
        # Parts first (NAME_det, NAME_rec), then end to end (NAME): the detector of the
        # command is the one whose crops calibrate the recognizers.
        written = sorted(
            fp32_dir.glob("*.mar"), key=lambda p: (not p.stem.endswith(("_det", "_rec")), p.name)
        )
        for path in written:
            if (out_folder / path.name).exists() and not args.force:
                raise ConfigError(f"{out_folder / path.name} already exists; use --force")
        done = [quantizer.quantize(path, int8_dir / path.name) for path in written]
        out_folder.mkdir(parents=True, exist_ok=True)
        outs = [Path(shutil.move(str(path), str(out_folder / path.name))) for path in done]
    print("\n".join(str(out) for out in outs))
    return 0


def _archive_fp32(args: argparse.Namespace) -> int:
    """MMOCR config + checkpoint, or PaddleOCR ONNX files (--det/--rec/--cls/--dict)."""
    import json

    paddle = args.det is not None or args.rec is not None
    parts = [v for v in (args.det, args.rec) if v is not None]
    if paddle and not all(len(v) == 1 and v[0].lower().endswith(".onnx") for v in parts):
        return _archive_parts(args)
    if paddle:
        from ocrserve.ppocr.paddle_archiver import archive_paddle

        if args.config is not None or args.runtime is not None:
            raise ConfigError(
                "PaddleOCR archives take --det/--rec/--cls/--dict, not an MMOCR config, "
                "checkpoint or --runtime"
            )
        overrides = None
        if args.ppocr_config is not None:
            try:
                overrides = json.loads(Path(args.ppocr_config).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"--ppocr-config {args.ppocr_config}: {exc}") from exc
            if not isinstance(overrides, dict):
                raise ConfigError(f"--ppocr-config {args.ppocr_config}: not a JSON object")
        outs = archive_paddle(
            args.output_folder, det=args.det and args.det[0], rec=args.rec and args.rec[0],
            cls=args.cls,
            dict_file=args.dict_file, model_name=args.model_name or "ppocr",
            model_version=args.model_version, force=args.force,
            settings=args.ppocr_settings, config=overrides, options=_pinned(args.options),
        )  # fmt: skip
        print("\n".join(str(out) for out in outs))
        return 0
    if args.config is None or args.checkpoint is None:
        raise ConfigError(
            "ocrserve archive needs CONFIG CHECKPOINT (MMOCR) or --det/--rec (PaddleOCR ONNX)"
        )
    if args.cls is not None or args.dict_file is not None:
        raise ConfigError("--cls and --dict belong to PaddleOCR archives: give --det/--rec too")
    from ocrserve.mmocr.archiver import archive_mmocr

    out = archive_mmocr(
        args.config, args.checkpoint, args.output_folder, args.model_name,
        args.model_version, args.force, args.runtime or "torch",
        options=_pinned(args.options),
    )  # fmt: skip
    print(out)
    return 0


def _archive_parts(args: argparse.Namespace) -> int:
    """``ocrserve archive --det ... --rec ...`` with a part that is not a PaddleOCR ONNX file:
    one end-to-end archive, as ``ocrserve compose`` writes."""
    from ocrserve.compose.composer import compose_archive

    if args.det is None or args.rec is None:
        raise ConfigError(
            "--det and --rec both: a detector or recognizer alone is archived from its own "
            "files (ocrserve archive CONFIG CHECKPOINT, or --det/--rec X.onnx)"
        )
    if args.model_name is None:
        raise ConfigError("--model-name NAME: the name of the end-to-end archive to write")
    unused = [f for f in ("config", "runtime", "dict_file", "ppocr_config") if getattr(args, f)]
    if unused:
        raise ConfigError(
            f"--{unused[0].replace('_file', '').replace('_', '-')} does not apply when "
            "composing parts (a .mar or an MMOCR CONFIG CHECKPOINT pair is among them)"
        )
    out = compose_archive(
        args.output_folder, det=args.det, rec=args.rec, cls=args.cls,
        model_name=args.model_name, model_version=args.model_version,
        force=args.force, options=_pinned(args.options),
    )  # fmt: skip
    print(out)
    return 0


def _compose(args: argparse.Namespace) -> int:
    """One end-to-end archive from a detector and a recognizer archive (and a classifier)."""
    from ocrserve.compose.composer import compose_archive

    out = compose_archive(
        args.output_folder, det=args.det, rec=args.rec, cls=args.cls,
        model_name=args.model_name, model_version=args.model_version,
        rec_batch=args.rec_batch, drop_score=args.drop_score, force=args.force,
        options=_pinned(args.options),
    )  # fmt: skip
    print(out)
    return 0


def _print_key(args: argparse.Namespace) -> int:
    settings = _server_settings(args)
    record = ServerRecord.read(settings.pid_path())
    management = record.management_address if record else settings.management_address
    try:
        path = find_key_file(settings, args.key_file)
        if record is None and not args.key_file and not path.exists():
            raise ConfigError(
                f"ocrserve is not running at {settings.inference_address} (no live server in "
                f"{settings.pid_path()}) and there is no {path}; name the server as it was "
                "started (--inference-address, --ts-config or --pid-file) or pass --key-file FILE"
            )
        print(read_key(path, args.type, management))
    except ConfigError as exc:
        print(f"ocrserve: error: {exc.message}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        if args.command == "stop":
            return _stop(_server_settings(args), args.timeout)
        if args.command == "key":
            return _print_key(args)
        if args.command == "archive":
            return _archive(args)
        if args.command == "compose":
            return _compose(args)
        if args.command == "compare":
            from ocrserve.compare.runner import run_compare

            return run_compare(args)
        if args.command == "request":
            return run_request(args)
        if args.command == "predict":
            return _predict(args.inputs, args.device, args.threads)
        settings = _settings_from(args)
        if args.foreground:
            return _run_foreground(settings)
        return _start_background(settings, argv[1:])
    except OcrServeError as exc:
        print(f"ocrserve: error: {exc.message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an MMOCR model without the torch extra
        missing = (exc.name or "").partition(".")[0]
        if missing not in _TORCH_EXTRA:
            raise
        what = "PyTorch" if missing == "torch" else missing
        print(
            f"ocrserve: error: ocrserve {args.command} needs {what} for MMOCR models (the "
            f"torch extra), which is not installed: {TORCH_INSTALL}",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
