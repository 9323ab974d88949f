"""``ocrserve request MODEL IMAGE...``: images through a served model with `Client`, the answers
as plain text or JSON, optionally one JSON file per image in ``--out``.

Only the standard library is imported at module level: the CLI builds its parser from here.
Exit status: 0 when every image was answered, 1 when one was not, 2 when it cannot start
(an image or key that cannot be read, a bad address).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ocrserve.errors import ConfigError

__all__ = ["add_request_parser", "format_text", "run_request"]


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
        "--url", default="http://127.0.0.1:8080",
        help="The server's inference address. Default: http://127.0.0.1:8080.",
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
        "--retries", type=int, default=3, help="Tries after a 503 or refused connection."
    )
    parser.add_argument("--quiet", action="store_true", help="No progress bar.")


def format_text(result: Any) -> str:
    """A result as plain text: the texts read, one per line; boxes for detection; a document's
    pages each under a ``--- page N ---`` line."""
    from ocrserve.client.results import Detection, Document, EndToEnd, Recognition

    if isinstance(result, Document):
        return "\n".join(
            f"--- page {page.number} ---\n{format_text(page.result)}" for page in result.pages
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
    """``[#####-----] 5/10 images`` on one line of stderr."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream, self.width = stream, width

    def __call__(self, done: int, total: int) -> None:
        filled = self.width * done // max(1, total)
        bar = "#" * filled + "-" * (self.width - filled)
        end = "\n" if done == total else ""
        self.stream.write(f"\r[{bar}] {done}/{total} images{end}")
        self.stream.flush()


def _out_paths(images: list[Path], folder: Path) -> list[Path]:
    seen: dict[str, int] = {}
    paths = []
    for image in images:
        n = seen[image.stem] = seen.get(image.stem, 0) + 1
        paths.append(folder / (f"{image.stem}.json" if n == 1 else f"{image.stem}-{n}.json"))
    return paths


def run_request(args: argparse.Namespace) -> int:
    import httpx

    from ocrserve.client import Client
    from ocrserve.client.connection import describe_failure
    from ocrserve.compare.runner import IMAGE_SUFFIXES, find_images

    try:
        suffixes = (*IMAGE_SUFFIXES, ".pdf")  # a folder's PDFs are answered page by page
        images = [image for path in args.images for image in find_images(path, suffixes)]
        model, _, version = args.model.partition("/")
        client = Client(args.url, token=args.token, key_file=args.key_file, retries=args.retries)
        client.keys.get("inference")  # a key file that cannot be read stops here, not per image
    except ConfigError as exc:
        print(f"ocrserve: error: {exc.message}", file=sys.stderr)
        return 2
    show = len(images) > 1 and not args.quiet
    with client:
        results = client.predict_many(
            model, images, version or None, concurrency=args.concurrency,
            progress=ProgressBar(sys.stderr) if show else None, return_exceptions=True,
        )  # fmt: skip
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
