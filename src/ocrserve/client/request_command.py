"""``ocrserve request MODEL IMAGE...``: images through a served model with `Client`, the answers
as plain text or JSON, optionally one JSON file per image in ``--out``. A PDF or multi-page
TIFF is read page by page (`Client.predict_pages`), with a bar of its pages.

Every request option is a flag generated from `ocrserve.options.OPTIONS` (``--max-side 1280``,
``--char-scores/--no-char-scores``), except one whose flag would be one of the command's own;
``--option NAME=VALUE`` reaches any option. Only the standard library and ocrserve's light
modules (errors, options) are imported at module level: the CLI builds its parser from here.
Exit status: 0 when every image and page was answered, 1 when one was not, 2 when it cannot
start (an image or key that cannot be read, a bad address, a malformed ``--option``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ocrserve.errors import ConfigError
from ocrserve.options import OPTIONS, Option

__all__ = [
    "ProgressBar",
    "add_option_flags",
    "add_request_parser",
    "format_text",
    "option_flag",
    "request_options",
    "run_request",
]

_KINDS = {float: "number", int: "integer", bool: "boolean", str: "string"}


def add_request_parser(sub: Any) -> None:
    """Add ``request`` to the ``ocrserve`` subcommands."""
    parser = sub.add_parser(
        "request",
        help="send images to a served model and print its answers",
        description="Send each image (or the images in a folder) to MODEL on a running server "
        "and print the answers: plain text (the texts read; boxes for detection) or JSON (one "
        "image: its answer; several: an object keyed by path). The key is found as `ocrserve "
        "key` finds it unless --token or --key-file gives it. 503 answers and refused "
        "connections are retried with back-off.",
    )
    parser.add_argument("model", help="Model name (MODEL or MODEL/VERSION).")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="Image files or folders.")
    parser.add_argument(
        "--inference-address", "--url", dest="inference_address",
        default="http://127.0.0.1:8080", metavar="URL",
        help="The server's inference address (http://HOST:PORT or HOST:PORT), as start, stop "
        "and key take it. Default: http://127.0.0.1:8080.",
    )  # fmt: skip
    parser.add_argument("--token", default=None, help="Inference key; give '-KEY' as --token=KEY.")
    parser.add_argument("--key-file", default=None, help="Read the key from this key file.")
    parser.add_argument(
        "--format", choices=["text", "json"], default="text", help="Output. Default: text."
    )
    parser.add_argument(
        "--out", default=None, metavar="DIR",
        help="Also write each answer to DIR/IMAGE_STEM.json (the folder is created).",
    )  # fmt: skip
    parser.add_argument(
        "--concurrency", type=int, default=4, help="Requests in flight. Default: 4."
    )
    parser.add_argument(
        "--retries", type=int, default=3,
        help="Tries after a 503 or refused connection. Default: 3.",
    )  # fmt: skip
    shown = parser.add_mutually_exclusive_group()
    shown.add_argument("--quiet", action="store_true", help="No progress bar.")
    shown.add_argument(
        "--progress", action="store_true",
        help="Show the progress bars even when stderr is not a terminal (a PDF's pages are "
        "shown on a terminal only, several images' always).",
    )  # fmt: skip
    parser.add_argument(
        "--option", action="append", default=[], metavar="NAME=VALUE", dest="options",
        help="A request option, sent as given (the server checks it: an unknown name or a bad "
        "value is a 400 naming it). Repeatable. Reaches every option, also one whose flag "
        "below is missing because it is one of this command's own flags.",
    )  # fmt: skip
    add_option_flags(parser.add_argument_group("request options (see docs/options.md)"))


def option_flag(option: Option) -> str:
    """The flag of a request option: ``box_score_threshold`` -> ``--box-score-threshold``."""
    return "--" + option.name.replace("_", "-")


def _dest(option: Option) -> str:
    return f"request_option_{option.name}"


def add_option_flags(parser: Any) -> list[Option]:
    """One flag per option of `OPTIONS` (a boolean one as ``--name/--no-name``), unless it is
    taken by a flag of the parser already; the options that got none (``--option`` reaches
    them)."""
    skipped = []
    for option in OPTIONS:
        help_text = _option_help(option)
        try:
            if option.kind is bool:
                parser.add_argument(
                    option_flag(option), dest=_dest(option), default=None,
                    action=argparse.BooleanOptionalAction, help=help_text,
                )  # fmt: skip
            else:
                parser.add_argument(
                    option_flag(option), dest=_dest(option), default=None, type=option.kind,
                    choices=option.choices,
                    metavar=None if option.choices else option.name.upper(),
                    help=help_text,
                )  # fmt: skip
        except argparse.ArgumentError:  # a flag of `request` itself: only --option reaches it
            skipped.append(option)
    return skipped


def _option_help(option: Option) -> str:
    what = _KINDS.get(option.kind, "string")
    if option.minimum is not None and option.maximum is not None:
        what += f", {option.minimum:g} to {option.maximum:g}"
    tasks = ", ".join(sorted(option.tasks))
    # argparse formats help with %: a literal one is written %%.
    return f"{option.description} ({what}; {tasks} models)".replace("%", "%%")


def request_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options to send: the flags given, typed, and each ``--option NAME=VALUE`` as its
    text. An option given twice, or an ``--option`` without ``=``, raises `ConfigError`."""
    options: dict[str, Any] = {}
    for option in OPTIONS:
        value = getattr(args, _dest(option), None)
        if value is not None:
            options[option.name] = value
    for item in getattr(args, "options", None) or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"--option {item!r}: give NAME=VALUE, e.g. --option max_side=1280")
        if name in options:
            raise ConfigError(f"request option {name!r} is given twice")
        options[name] = value
    return options


def format_text(result: Any) -> str:
    """A result as plain text: the texts read, one per line; boxes for detection; a document's
    pages each under a ``--- page N ---`` line."""
    from ocrserve.client.connection import describe_failure
    from ocrserve.client.results import Detection, Document, EndToEnd, Recognition

    if isinstance(result, Document):
        return "\n".join(
            f"--- page {page.number} ---\n"
            + (f"error: {describe_failure(page.error)}" if page.error else format_text(page.result))
            for page in result.pages
        )
    if isinstance(result, Recognition):
        return f"{result.text}\t{result.score:.4f}"
    if isinstance(result, EndToEnd):
        return "\n".join(f"{line.text}\t{line.score:.4f}" for line in result.lines)
    if isinstance(result, Detection):
        return "\n".join(
            " ".join(f"{x:g},{y:g}" for x, y in box.points) + f"\t{box.score or 0:.4f}"
            for box in result.boxes
        )
    return json.dumps(result.raw, ensure_ascii=False)


class ProgressBar:
    """``[#####-----] 5/10 images`` (or ``pages``) on one line of stderr."""

    def __init__(self, stream: TextIO, width: int = 30, unit: str = "images") -> None:
        self.stream, self.width, self.unit = stream, width, unit
        self.open = False  # a bar is on the line, not ended

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * min(done, total) // max(1, total)
        bar = "#" * filled + "-" * (self.width - filled)
        self.open = done < total
        end = "" if self.open else "\n"
        self.stream.write(f"\r[{bar}] {done}/{total} {self.unit}{end}")
        self.stream.flush()

    def close(self) -> None:
        """End the line of a bar that stopped before its end (a failure)."""
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _out_paths(images: list[Path], folder: Path) -> list[Path]:
    seen: dict[str, int] = {}
    paths = []
    for image in images:
        n = seen[image.stem] = seen.get(image.stem, 0) + 1
        paths.append(folder / (f"{image.stem}.json" if n == 1 else f"{image.stem}-{n}.json"))
    return paths


def _is_document(path: Path) -> bool:
    """A PDF, or a TIFF of several pages (Pillow counts them); else False, the server decides."""
    try:
        with path.open("rb") as f:
            head = f.read(5)
    except OSError:
        return False
    if head.startswith(b"%PDF-"):
        return True
    if head[:4] not in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return False
    try:
        from PIL import Image

        with Image.open(path) as image:
            return int(getattr(image, "n_frames", 1)) > 1
    except Exception:  # a TIFF Pillow cannot read: the server refuses it
        return False


def _read_document(
    client: Any, model: str, version: str | None, path: Path, options: dict[str, Any],
    bar: ProgressBar | None,
) -> Any:  # fmt: skip
    """The document's pages as a `Document`, or the exception that stopped them."""
    import httpx

    from ocrserve.client.results import Document
    from ocrserve.errors import OcrServeError

    try:
        pages = list(client.predict_pages(model, path, version, progress=bar, **options))
    except (OcrServeError, httpx.HTTPError, OSError) as exc:
        return exc
    finally:
        if bar is not None:
            bar.close()
    return Document({"pages": [page.raw for page in pages]}, pages)


def run_request(args: argparse.Namespace) -> int:
    import httpx

    from ocrserve.client import Client, Document
    from ocrserve.client.connection import describe_failure
    from ocrserve.compare.runner import IMAGE_SUFFIXES, find_images

    try:
        suffixes = (*IMAGE_SUFFIXES, ".pdf")  # a folder's PDFs are answered page by page
        images = [image for path in args.images for image in find_images(path, suffixes)]
        options = request_options(args)
        model, _, version = args.model.partition("/")
        client = Client(
            args.inference_address, token=args.token, key_file=args.key_file,
            retries=args.retries,
        )  # fmt: skip
        client.keys.get("inference")  # a key file that cannot be read stops here, not per image
    except ConfigError as exc:
        print(f"ocrserve: error: {exc.message}", file=sys.stderr)
        return 2
    documents = {i for i, image in enumerate(images) if _is_document(image)}
    plain = [image for i, image in enumerate(images) if i not in documents]
    show_images = not args.quiet and (len(plain) > 1 or (args.progress and bool(plain)))
    show_pages = not args.quiet and (args.progress or sys.stderr.isatty())
    results: list[Any] = [None] * len(images)
    with client:
        image_bar = ProgressBar(sys.stderr) if show_images else None
        many = client.predict_many(
            model, plain, version or None, concurrency=args.concurrency, progress=image_bar,
            return_exceptions=True, **options,
        )  # fmt: skip
        answered = iter(many)
        for i, image in enumerate(images):
            if i in documents:
                bar = ProgressBar(sys.stderr, unit="pages") if show_pages else None
                results[i] = _read_document(client, model, version or None, image, options, bar)
            else:
                results[i] = next(answered)
    failed = 0
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    outs = _out_paths(images, Path(args.out)) if args.out else [None] * len(images)
    answers: dict[str, Any] = {}
    for image, result, out in zip(images, results, outs):
        if isinstance(result, (Exception, httpx.HTTPError)):
            failed += 1
            print(f"{image}: {describe_failure(result)}", file=sys.stderr)
            continue
        answers[str(image)] = result.raw
        for page in result.pages if isinstance(result, Document) else []:
            if page.error is not None:
                failed += 1
                print(f"{image}: page {page.number}: {describe_failure(page.error)}",
                      file=sys.stderr)  # fmt: skip
        if out is not None:
            out.write_text(json.dumps(result.raw, indent=2, ensure_ascii=False) + "\n")
        if args.format == "text":
            if len(images) > 1:
                print(f"== {image}")
            print(format_text(result))
    if args.format == "json" and answers:
        doc = next(iter(answers.values())) if len(images) == 1 else answers
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 1 if failed else 0
