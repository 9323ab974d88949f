"""``ocrserve compare``: a model run locally and the same model served, image by image.

MMOCR's ``tools/deployment/test_torchserve.py`` ran one image through the model and through
TorchServe, asserted equality and opened two windows. This does the same on a file or a folder,
without a display: for each image the local predictor (CONFIG CHECKPOINT or MODEL.mar, as
``ocrserve predict``) and the served model (``POST /predictions/MODEL_NAME``) answer, and
`ocrserve.compare.matching` compares the answers. Results: a table on stdout, and in ``--out`` a
side-by-side picture per image, ``report.json`` and ``index.html`` (`ocrserve.compare.pictures`).
Exit status 0 only when every image agrees, 1 when one does not, 2 when the comparison cannot run.

Only the standard library is imported at module level: the CLI builds its parser from here, and
thread counts must be pinned before numpy, OpenCV or torch are first imported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ocrserve.compare.matching import ImageComparison, Tolerances, compare_results
from ocrserve.errors import ConfigError, OcrServeError

if TYPE_CHECKING:
    import httpx

    from ocrserve.predictor import Predictor

__all__ = [
    "add_compare_parser",
    "find_images",
    "format_table",
    "read_token",
    "run_compare",
    "served_key_file",
]

IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")


def find_images(
    path: str | os.PathLike[str], suffixes: tuple[str, ...] = IMAGE_SUFFIXES
) -> list[Path]:
    """The image itself, or the images directly in a folder (by ``suffixes``), sorted by name."""
    p = Path(path)
    if p.is_dir():
        images = sorted(q for q in p.iterdir() if q.suffix.lower() in suffixes)
        if not images:
            raise ConfigError(f"{p}: no images ({', '.join(suffixes)}) in this folder")
        return images
    if not p.is_file():
        raise ConfigError(f"{p}: no such image or folder")
    return [p]


def read_token(token: str | None, key_file: str | os.PathLike[str] = "key_file.json") -> str | None:
    """``token``, else the inference key of the server's ``key_file.json`` if readable."""
    if token:
        return token
    try:
        key = json.loads(Path(key_file).read_text())["inference"]["key"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return key if isinstance(key, str) else None


def served_key_file(address: str) -> Path:
    """The key file of the server at ``address`` (its pid file's record says where it is, so
    any folder works), else ``./key_file.json``."""
    from ocrserve.server.instance import find_key_file
    from ocrserve.settings import Settings

    try:
        return find_key_file(Settings(inference_address=address))
    except ConfigError:  # a bad address (reported later) or a server without authorization
        return Path("key_file.json")


class _ServedModel:
    """``POST /predictions/NAME`` with the image; fatal answers raise `ConfigError`."""

    def __init__(self, address: str, name: str, token: str | None, timeout: float) -> None:
        import httpx

        from ocrserve.settings import parse_address

        host, port = parse_address("--inference-address", address)
        self.base = f"http://{host}:{port}"
        self.url = f"{self.base}/predictions/{name}"
        self.name = name
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client: httpx.Client = httpx.Client(headers=headers, timeout=timeout)

    def ping(self) -> None:
        """Fail early, before a model is loaded, when nothing listens at the address."""
        import httpx

        try:
            self.client.get(f"{self.base}/ping")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: Exception) -> ConfigError:
        return ConfigError(
            f"cannot reach the inference API at {self.base} ({exc}); start the server "
            "(ocrserve start) or pass --inference-address URL"
        )

    def predict(self, data: bytes) -> Any:
        """The served answer (JSON), or raise `ConfigError`, or `_ServedError` for this image."""
        import httpx

        try:
            resp = self.client.post(
                self.url, content=data, headers={"Content-Type": "application/octet-stream"}
            )
        except httpx.ConnectError as exc:
            raise self._unreachable(exc) from exc
        except httpx.HTTPError as exc:
            raise _ServedError(f"served: {type(exc).__name__}: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code == 200 and body is not None:
            return body
        kind = body.get("type", "") if isinstance(body, dict) else ""
        message = body.get("message", resp.text[:200]) if isinstance(body, dict) else resp.text
        if resp.status_code == 401:
            raise ConfigError(
                f"{self.base} refused the key ({message}); pass --token KEY (`ocrserve key` in "
                "the server's folder prints it) or run from the folder holding key_file.json"
            )
        if resp.status_code == 404 and kind.startswith("ModelNotFound"):
            raise ConfigError(
                f"{message} at {self.base}; GET /models on the management API "
                "lists the served models"
            )
        if resp.status_code == 404 and kind != "ModelVersionNotFoundException":
            raise ConfigError(f"{self.url}: 404 ({message}); is this an inference API?")
        what = " ".join(str(x) for x in ("HTTP", resp.status_code, kind) if x)
        raise _ServedError(f"served: {what}: {message}")

    def close(self) -> None:
        self.client.close()


class _ServedError(Exception):
    """The served model failed on one image (the others may still compare)."""


def load_local_predictor(
    model_args: Sequence[str], device: str, threads: int, tmp: str
) -> Predictor:
    """CONFIG CHECKPOINT (an MMOCR model) or MODEL.mar (any archive), as ``ocrserve predict``."""
    if len(model_args) == 1:
        from ocrserve.archives.loader import load_predictor
        from ocrserve.archives.mar import extract_archive

        if not Path(model_args[0]).is_file():
            raise ConfigError(f"{model_args[0]}: no such archive")
        extract_archive(model_args[0], tmp)
        return load_predictor(tmp, threads=threads, device=device)
    from ocrserve.mmocr.mmocr_predictor import MMOCRPredictor

    for path in model_args:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such file")
    return MMOCRPredictor.from_files(model_args[0], model_args[1], device=device)


def _plain(value: Any) -> Any:
    """A predictor's result as the server would send it (JSON types, numpy scalars too)."""

    def default(obj: Any) -> Any:
        if hasattr(obj, "tolist"):
            return obj.tolist()
        raise TypeError(f"{type(obj).__name__} is not JSON serializable")

    return json.loads(json.dumps(value, default=default))


class _Progress:
    """A one-line progress bar on a terminal; silent when the stream is not one."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.stream, self.width = total, stream, width
        self.active = total > 1 and stream.isatty()

    def show(self, done: int, label: str) -> None:
        if self.active:
            filled = self.width * done // self.total
            bar = "#" * filled + "." * (self.width - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total} {label[:40]:<40}")
            self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\r" + " " * (self.width + 55) + "\r")
            self.stream.flush()


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(comparisons: Sequence[ImageComparison]) -> str:
    """The summary table: one row per image."""
    head = ("image", "local", "served", "matched", "max dvertex px", "max dscore", "text", "result")
    rows = [
        (
            Path(c.image).name,
            str(len(c.local)),
            str(len(c.served)),
            str(len(c.pairs)),
            _fmt(c.max_vertex_diff, ".3f"),
            _fmt(c.max_score_diff, ".2e"),
            str(c.text_mismatches),
            "agree" if c.ok else "DIFFER",
        )
        for c in comparisons
    ]
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(len(head))]
    lines = []
    for r in (head, *rows):
        cells = [r[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(r[1:-1], widths[1:-1]))]
        lines.append("  ".join([*cells, r[-1]]))
    return "\n".join(lines)


def add_compare_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ocrserve compare`` to the ``ocrserve`` command's subparsers."""
    tol = Tolerances()
    p = subparsers.add_parser(
        "compare",
        help="compare a served model with the same model run locally (MMOCR's test_torchserve)",
        description="ocrserve compare IMAGE_OR_FOLDER CONFIG CHECKPOINT MODEL_NAME, or "
        "ocrserve compare IMAGE_OR_FOLDER MODEL.mar MODEL_NAME: run each image through the "
        "local model and through the served MODEL_NAME, match the instances one to one and "
        "compare them. Writes a side-by-side picture per image (local | served, differences in "
        "red), report.json and index.html into --out, and prints a table.",
        usage="ocrserve compare [options] IMAGE_OR_FOLDER (CONFIG CHECKPOINT | MODEL.mar) "
        "MODEL_NAME",
        epilog="Exit status: 0 when every image agrees within the tolerances, 1 when any "
        "differs, 2 when the comparison cannot run (no server, refused key, unknown model).",
    )
    p.add_argument("image", metavar="IMAGE_OR_FOLDER", help="An image, or a folder of images.")
    p.add_argument(
        "model",
        nargs="+",
        metavar="MODEL",
        help="CONFIG CHECKPOINT MODEL_NAME or MODEL.mar MODEL_NAME: the local model (an MMOCR "
        "config and checkpoint, or an archive) and the name it is served under.",
    )
    p.add_argument(
        "--inference-address",
        "--inference-addr",  # MMOCR's test_torchserve.py spelling
        dest="inference_address",
        default="http://127.0.0.1:8080",
        metavar="URL",
        help="The server's inference address (http://HOST:PORT or HOST:PORT). Default: "
        "http://127.0.0.1:8080.",
    )
    p.add_argument(
        "--device",
        default="cpu",
        metavar="DEVICE",
        help="Local device: cpu or cuda[:N]. Default: cpu.",
    )
    p.add_argument(
        "--score-thr",
        type=float,
        default=0.5,
        metavar="THR",
        help="Display threshold, as in MMOCR's show_result: instances scoring below it are "
        "drawn grey and unlabelled (still compared). Default: 0.5.",
    )
    p.add_argument(
        "--token",
        default=None,
        metavar="KEY",
        help="Inference key (`ocrserve key` prints it). Default: the key of the server at "
        "--inference-address if it runs on this machine, else the one in ./key_file.json if there "
        "is one, else none. Give a key that begins with '-' as --token=KEY.",
    )
    p.add_argument(
        "--out",
        default="ocrserve-compare",
        metavar="DIR",
        help="Folder for the pictures and reports. Default: ocrserve-compare.",
    )
    p.add_argument(
        "--vertex-tol",
        type=float,
        default=tol.vertex,
        metavar="PX",
        help=f"Largest vertex distance in pixels. Default: {tol.vertex:g}.",
    )
    p.add_argument(
        "--score-tol",
        type=float,
        default=tol.score,
        metavar="TOL",
        help=f"Largest score difference. Default: {tol.score:g}.",
    )
    p.add_argument(
        "--match-iou",
        type=float,
        default=tol.match_iou,
        metavar="IOU",
        help="Polygons farther apart than --vertex-tol are the same instance when they overlap "
        f"by at least this IoU (then reported as differing). Default: {tol.match_iou:g}.",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        metavar="N",
        help="Local CPU threads. Default: 0 (all cores). Results can differ in the last float "
        "bits between thread counts: use the served model's cpuThreads (management API "
        "describe) to reproduce it exactly.",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="Seconds to wait for each served answer. Default: 120.",
    )


def _split_model_args(args: Sequence[str]) -> tuple[list[str], str]:
    if len(args) == 2 and args[0].endswith(".mar"):
        return [args[0]], args[1]
    if len(args) == 3 and not args[0].endswith(".mar"):
        return [args[0], args[1]], args[2]
    raise ConfigError(
        "usage: ocrserve compare IMAGE_OR_FOLDER CONFIG CHECKPOINT MODEL_NAME | "
        "IMAGE_OR_FOLDER MODEL.mar MODEL_NAME"
    )


def _check_options(args: argparse.Namespace) -> Tolerances:
    for name in ("vertex_tol", "score_tol", "match_iou", "timeout"):
        value = getattr(args, name)
        if not value >= 0:
            raise ConfigError(f"--{name.replace('_', '-')}={value}: must be >= 0")
    if args.threads < 0:
        raise ConfigError(f"--threads={args.threads}: must be >= 0")
    return Tolerances(args.vertex_tol, args.score_tol, args.match_iou)


def _compare_one(
    path: Path, predictor: Predictor, served: _ServedModel, tol: Tolerances
) -> tuple[ImageComparison, Any]:
    """Compare one image; the decoded image (or None) comes back for the picture."""
    from ocrserve.imaging import decode
    from ocrserve.settings import Settings

    try:
        data = path.read_bytes()
    except OSError as exc:
        return ImageComparison(str(path), predictor.task, problems=[f"cannot read: {exc}"]), None
    image, local, served_result, problems = None, None, None, []
    try:
        image = decode(
            data, Settings().max_image_pixels, exif_orientation=predictor.exif_orientation
        )
        local = _plain(predictor.predict([image])[0])
    except OcrServeError as exc:
        problems.append(f"local: {exc.message}")
    except Exception as exc:  # a failing model fails this image, as a served worker would
        problems.append(f"local: {type(exc).__name__}: {exc}")
    try:
        served_result = served.predict(data)
    except _ServedError as exc:
        problems.append(str(exc))
    if problems:
        comp = ImageComparison(
            str(path),
            predictor.task,
            problems=problems,
            local_result=local,
            served_result=served_result,
        )
        return comp, image
    return compare_results(str(path), predictor.task, local, served_result, tol), image


def run_compare(args: argparse.Namespace) -> int:
    """``ocrserve compare``: 0 when every image agrees, 1 otherwise; raises `ConfigError`."""
    from ocrserve.server.worker import limit_threads, set_torch_threads

    tol = _check_options(args)
    model_args, name = _split_model_args(args.model)
    images = find_images(args.image)
    threads = args.threads or os.cpu_count() or 1
    limit_threads(threads)
    out_dir = Path(args.out)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out_dir}: cannot create it ({exc.strerror})") from exc
    from ocrserve.compare import pictures

    served = _ServedModel(
        args.inference_address, name,
        read_token(args.token, served_key_file(args.inference_address)),
        args.timeout,
    )  # fmt: skip
    comparisons: list[ImageComparison] = []
    try:
        served.ping()
        with tempfile.TemporaryDirectory(prefix="ocrserve-compare-") as tmp:
            predictor = load_local_predictor(model_args, args.device, threads, tmp)
            set_torch_threads(threads)
            try:
                import cv2

                cv2.setNumThreads(threads)  # as a served worker does
            except ImportError:
                pass
            progress = _Progress(len(images))
            names = pictures.PictureNames(out_dir)
            try:
                for n, path in enumerate(images):
                    progress.show(n, path.name)
                    comp, image = _compare_one(path, predictor, served, tol)
                    if image is not None:
                        picture = names.next(path)
                        pictures.draw_comparison(image, comp, picture, args.score_thr)
                        comp.picture = picture.name
                    comparisons.append(comp)
                progress.show(len(images), "")
            finally:
                progress.close()
    finally:
        served.close()
    header = {
        "model_name": name,
        "local_model": [str(Path(a)) for a in model_args],
        "inference_address": args.inference_address,
        "device": args.device,
        "threads": threads,
        "tolerances": {"vertex_px": tol.vertex, "score": tol.score, "match_iou": tol.match_iou},
        "score_thr": args.score_thr,
    }
    index = pictures.write_reports(out_dir, header, comparisons)
    print(format_table(comparisons))
    for comp in comparisons:
        reasons = comp.reasons()
        for line in reasons[:5]:
            print(f"  {Path(comp.image).name}: {line}")
        if len(reasons) > 5:
            print(f"  {Path(comp.image).name}: ... {len(reasons) - 5} more in report.json")
    agree = sum(c.ok for c in comparisons)
    print(
        f"{agree} of {len(comparisons)} images agree (vertices within {tol.vertex:g} px, scores "
        f"within {tol.score:g}, texts equal). Pictures: {index}"
    )
    return 0 if agree == len(comparisons) else 1
