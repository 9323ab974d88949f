"""ocrserve as OCRmyPDF's OCR engine: ``ocrmypdf --plugin ocrserve.ocrmypdf in.pdf out.pdf``.

OCRmyPDF (``pip install 'ocrserve[ocrmypdf]'``, OCRmyPDF 17's plugin interface: its
``pluginspec.OcrEngine``) hands the engine one page image at a time; this engine reads it with
an ocrserve server (``--ocrserve-url``; the key found as ``ocrserve key`` finds it, or
``--ocrserve-key``) or, without a URL, with the bundled end-to-end model in this process (loaded
once per OCRmyPDF worker). The answer becomes hOCR (`ocrserve.documents.outputs.hocr`, for
OCRmyPDF's default renderer) or a text-only PDF (`searchable_pdf.text_only_pdf`, for
``--pdf-renderer sandwich``), and the page's plain text for ``--sidecar``.

Tesseract's plugin is blocked while this one is loaded (its checks would demand the
``tesseract`` program). Orientation is not detected (`get_orientation` says 0 with no
confidence: ``--rotate-pages`` leaves pages as they are; the bundled model turns upside-down
lines itself); deskew is not offered. A server's refusal or an unreachable server stops
OCRmyPDF with its error (`SubprocessOutputError`, exit code 7), naming the page.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ocrmypdf import hookimpl
from ocrmypdf.exceptions import BadArgsError, SubprocessOutputError
from ocrmypdf.pluginspec import OcrEngine, OrientationConfidence
from pydantic import BaseModel

from ocrserve.documents.outputs import pages_of, text_only_pdf, write_hocr, write_text
from ocrserve.version import __version__

__all__ = ["LANGUAGES", "OcrServeEngine", "OcrServeOptions"]

log = logging.getLogger(__name__)

#: Tesseract's codes of the languages the bundled ``ocr`` model reads (docs/models.md: Latin
#: script with its accented letters, Chinese, Japanese); OCRmyPDF checks ``-l`` against them.
#: The model reads them all at once: ``-l`` changes nothing else.
LANGUAGES = frozenset({
    "eng", "deu", "fra", "spa", "ita", "por", "nld", "dan", "nor", "swe", "fin", "isl",
    "pol", "ces", "slk", "slv", "hrv", "hun", "ron", "tur", "cat", "eus", "glg", "lat",
    "est", "lav", "lit", "sqi", "msa", "ind", "vie", "chi_sim", "chi_tra", "jpn",
})  # fmt: skip
#: The bundled model the engine runs in process.
BUNDLED_MODEL = "ocr"


class OcrServeOptions(BaseModel):
    """The engine's options (``options.ocrserve``)."""

    url: str | None = None
    key: str | None = None
    model: str = BUNDLED_MODEL
    timeout: float = 300.0


@hookimpl
def initialize(plugin_manager: Any) -> None:
    plugin_manager.set_blocked("ocrmypdf.builtin_plugins.tesseract_ocr")


@hookimpl
def register_options() -> dict[str, type[BaseModel]]:
    # OCRmyPDF 17 reads ``options.tesseract`` whatever the engine (its validation coordinator):
    # Tesseract's option model stays registered, with its defaults, while its plugin is blocked.
    from ocrmypdf.builtin_plugins.tesseract_ocr import TesseractOptions

    return {"ocrserve": OcrServeOptions, "tesseract": TesseractOptions}


@hookimpl
def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("ocrserve", "OCR with ocrserve (ocrserve.ocrmypdf)")
    group.add_argument(
        "--ocrserve-url", dest="ocrserve_url", metavar="URL", default=None,
        help="An ocrserve server's inference API (e.g. http://127.0.0.1:8080). Without it the "
        "bundled model runs in this process.",
    )  # fmt: skip
    group.add_argument(
        "--ocrserve-key", dest="ocrserve_key", metavar="KEY", default=None,
        help="The server's inference key (default: found as `ocrserve key` finds it).",
    )  # fmt: skip
    group.add_argument(
        "--ocrserve-model", dest="ocrserve_model", metavar="NAME", default=BUNDLED_MODEL,
        help="The server's end-to-end model to read with (default: ocr).",
    )  # fmt: skip
    group.add_argument(
        "--ocrserve-timeout", dest="ocrserve_timeout", metavar="SECONDS", type=float,
        default=300.0, help="How long to wait for the server's answer to one page.",
    )  # fmt: skip


@hookimpl
def check_options(options: Any) -> None:
    settings = _settings(options)
    if settings.url is None and settings.model != BUNDLED_MODEL:
        raise BadArgsError("--ocrserve-model needs --ocrserve-url (in process: the bundled ocr).")


def _settings(options: Any) -> OcrServeOptions:
    found = getattr(options, "ocrserve", None)
    return found if isinstance(found, OcrServeOptions) else OcrServeOptions()


_local: dict[str, Any] = {}
_local_lock = threading.Lock()


def _predictor() -> Any:
    """The bundled model, loaded once per process (OCRmyPDF's workers are processes, or
    threads with ``--use-threads``)."""
    with _local_lock:
        if "predictor" not in _local:
            from ocrserve.archives.bundled import build_bundled_archive
            from ocrserve.archives.loader import load_predictor
            from ocrserve.archives.mar import extract_archive

            folder = Path(tempfile.mkdtemp(prefix="ocrserve-ocrmypdf-"))
            archive = build_bundled_archive(BUNDLED_MODEL, folder / "mar")
            extract_archive(archive, folder / "model")
            _local["predictor"] = load_predictor(folder / "model", threads=1)
        return _local["predictor"]


def _read(image: bytes, settings: OcrServeOptions) -> Mapping[str, Any]:
    """The end-to-end answer ``{"result": [...]}`` for one page image."""
    if settings.url is None:
        from ocrserve.imaging import decode
        from ocrserve.predictor import predict_with
        from ocrserve.settings import Settings

        predictor = _predictor()
        pixels = decode(image, Settings().max_image_pixels,
                        exif_orientation=predictor.exif_orientation)  # fmt: skip
        (answer,) = predict_with(predictor, [pixels], None)
        return answer
    from ocrserve.client import Client

    with Client(settings.url, token=settings.key, timeout=settings.timeout) as client:
        raw: Mapping[str, Any] = client.predict(settings.model, image).raw
    return raw


def _page(input_file: Path, options: Any) -> tuple[Any, float]:
    """The page's answer as an `ocrserve.documents.outputs.Page`, and the image's dpi."""
    from PIL import Image

    with Image.open(input_file) as img:
        size = img.size
        dpi = float(img.info.get("dpi", (300, 300))[0] or 300)
    settings = _settings(options)
    where = settings.url or "the bundled model in process"
    try:
        answer = _read(input_file.read_bytes(), settings)
    except Exception as exc:  # a server's refusal, a lost connection, a model that failed
        raise SubprocessOutputError(
            f"ocrserve ({where}) could not read {input_file.name}: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(answer, Mapping) or not isinstance(answer.get("result"), list):
        raise SubprocessOutputError(
            f"ocrserve ({where}): model {settings.model!r} gave no end-to-end answer "
            "(lines with text); use an e2e model."
        )
    [page] = pages_of(answer, size)
    return page, dpi


class OcrServeEngine(OcrEngine):
    """OCR by ocrserve (a server, or the bundled model in process)."""

    @staticmethod
    def version() -> str:
        return __version__

    @staticmethod
    def creator_tag(options: Any) -> str:
        return f"ocrserve {__version__}"

    def __str__(self) -> str:
        return f"ocrserve {__version__}"

    @staticmethod
    def languages(options: Any) -> set[str]:
        return set(LANGUAGES)

    @staticmethod
    def get_orientation(input_file: Path, options: Any) -> OrientationConfidence:
        return OrientationConfidence(angle=0, confidence=0.0)

    @staticmethod
    def get_deskew(input_file: Path, options: Any) -> float:
        return 0.0

    @staticmethod
    def generate_hocr(input_file: Path, output_hocr: Path, output_text: Path, options: Any) -> None:
        page, dpi = _page(input_file, options)
        output_hocr.write_bytes(write_hocr([page], dpi))
        output_text.write_bytes(write_text([page]))

    @staticmethod
    def generate_pdf(input_file: Path, output_pdf: Path, output_text: Path, options: Any) -> None:
        page, dpi = _page(input_file, options)
        output_pdf.write_bytes(text_only_pdf(page, dpi))
        output_text.write_bytes(write_text([page]))


@hookimpl
def get_ocr_engine(options: Any) -> OcrEngine:
    return OcrServeEngine()
