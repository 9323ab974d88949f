"""PP-OCR text recognition (CTC, PP-OCRv3 to v6) and the text-angle classifier, on ONNX Runtime.

Recognition follows PaddleOCR's published inference settings: BGR crop resized to height 48
keeping its aspect ratio, width at least 320 and otherwise the widest crop of its batch (at
most 100 heights: wider crops are squeezed), normalised to [-1, 1] and zero-padded on the
right; crops are sorted by aspect ratio and run in batches of ``rec_batch_num`` (6). CTC greedy
decoding uses the character list stored in the model's own metadata (or a PaddleOCR dictionary
file), with blank first and a space last (``use_space_char``); the score is the mean
probability of the kept characters. The angle classifier (PP-OCR mobile v2.0 cls) uses
48 x 192 inputs and turns a crop by 180 degrees when it says "180" with score > 0.9.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ocrserve.errors import ModelLoadError
from ocrserve.onnx_session import create_session
from ocrserve.ppocr.weights import weights_path

__all__ = [
    "PPOCRAngleClassifier",
    "PPOCRRecognizer",
    "Reading",
    "ctc_decode",
    "ctc_read",
    "dictionary_mismatch",
    "model_dictionary",
    "read_dictionary",
    "resize_norm_crop",
]


def resize_norm_crop(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a BGR crop to ``height`` keeping aspect (at most ``width``), normalise, pad right."""
    h, w = img.shape[:2]
    resized_w = min(width, int(math.ceil(height * w / max(h, 1))))
    resized_w = max(resized_w, 1)
    resized = cv2.resize(img, (resized_w, height)).astype(np.float32)
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :resized_w] = (resized.transpose(2, 0, 1) / 255.0 - 0.5) / 0.5
    return out


#: What a recognizer read in one crop: its text, its score and each character's score.
Reading = tuple[str, float, list[float]]


def ctc_read(probs: np.ndarray, charset: Sequence[str]) -> list[Reading]:
    """Greedy CTC: argmax per step, merge repeats, drop blanks (index 0); the score is the mean
    probability of the kept steps, each of which is a character's score."""
    idx = probs.argmax(axis=2)
    conf = probs.max(axis=2)
    out = []
    for row, row_conf in zip(idx, conf):
        keep = row != 0
        keep[1:] &= row[1:] != row[:-1]
        text = "".join(charset[i] for i in row[keep])
        chars = row_conf[keep]
        score = float(chars.mean()) if keep.any() else 0.0
        out.append((text, score, [round(float(c), 6) for c in chars]))
    return out


def ctc_decode(probs: np.ndarray, charset: Sequence[str]) -> list[tuple[str, float]]:
    """`ctc_read` without the character scores."""
    return [(text, score) for text, score, _ in ctc_read(probs, charset)]


def read_dictionary(path: Path) -> list[str]:
    """A PaddleOCR dictionary file: one character (or token) per line, UTF-8."""
    lines = path.read_bytes().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def model_dictionary(session: Any) -> list[str] | None:
    """The character list a PaddleOCR ONNX export keeps in its ``character`` metadata."""
    meta = session.get_modelmeta().custom_metadata_map
    return meta["character"].splitlines() if "character" in meta else None


def dictionary_mismatch(n_chars: int, use_space_char: bool, classes: int) -> str:
    """Why a dictionary does not fit a recognizer's output width."""
    space = " + a space" if use_space_char else ""
    return (
        f"the dictionary has {n_chars} characters (+ the CTC blank{space} = "
        f"{n_chars + 1 + use_space_char} classes) but the model predicts {classes} classes"
    )


class PPOCRRecognizer:
    """PP-OCR CTC recognizer (v3 to v6): one cropped word or line per image."""

    task = "textrecog"
    exif_orientation = True

    def __init__(
        self,
        threads: int = 1,
        batch_num: int = 6,
        model: Path | None = None,
        max_ratio: float = 100.0,
        dict_file: Path | None = None,
        use_space_char: bool = True,
    ) -> None:
        self.session = create_session(model or weights_path("rec"), threads)
        self._input = self.session.get_inputs()[0].name
        chars = read_dictionary(dict_file) if dict_file else model_dictionary(self.session)
        if chars is None:
            raise ModelLoadError(
                "recognition model has no 'character' metadata and no dictionary file was given"
            )
        self.charset = ["<blank>", *chars, *([" "] if use_space_char else [])]
        classes = self.session.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.charset):
            raise ModelLoadError(dictionary_mismatch(len(chars), use_space_char, classes))
        self.height, self.min_width = 48, 320
        self.batch_num = batch_num
        #: Crops wider than this many heights are squeezed to it (48 x 100 = 4800 pixels): an
        #: image of 20 x 10000 pixels would otherwise cost seconds, one of 20 x 2,000,000
        #: (within the pixel cap) minutes. Real lines stay far below it.
        self.max_ratio = max_ratio

    def read(self, crops: Sequence[np.ndarray]) -> list[Reading]:
        """Text, score and character scores per crop, batching crops of similar aspect ratio."""
        ratios = [min(self.max_ratio, c.shape[1] / max(c.shape[0], 1)) for c in crops]
        order = np.argsort(ratios, kind="stable")
        results: list[Reading] = [("", 0.0, [])] * len(crops)
        for start in range(0, len(crops), self.batch_num):
            chunk = order[start : start + self.batch_num]
            max_ratio = max(self.min_width / self.height, *(ratios[i] for i in chunk))
            width = int(self.height * max_ratio)
            batch = np.stack([resize_norm_crop(crops[i], self.height, width) for i in chunk])
            probs = self.session.run(None, {self._input: batch})[0]
            for i, res in zip(chunk, ctc_read(probs, self.charset)):
                results[i] = res
        return results

    def recognize(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """Text and score per crop (`read` without the character scores)."""
        return [(text, score) for text, score, _ in self.read(crops)]

    def predict(
        self, images: Sequence[np.ndarray], options: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with_chars = bool((options or {}).get("char_scores"))
        out: list[dict[str, Any]] = []
        for text, score, chars in self.read(images):
            answer: dict[str, Any] = {"text": text, "score": round(score, 6)}
            if with_chars:
                answer["char_scores"] = chars
            out.append(answer)
        return out


class PPOCRAngleClassifier:
    """Tells whether a text crop is upside down (0 or 180 degrees)."""

    def __init__(
        self, threads: int = 1, batch_num: int = 6, thresh: float = 0.9, model: Path | None = None
    ) -> None:
        self.session = create_session(model or weights_path("cls"), threads)
        self._input = self.session.get_inputs()[0].name
        self.batch_num, self.thresh = batch_num, thresh

    def flip_scores(self, crops: Sequence[np.ndarray]) -> list[float]:
        """Each crop's probability of being upside down (the "180" class)."""
        out: list[float] = []
        for start in range(0, len(crops), self.batch_num):
            idx = range(start, min(start + self.batch_num, len(crops)))
            batch = np.stack([resize_norm_crop(crops[i], 48, 192) for i in idx])
            probs = self.session.run(None, {self._input: batch})[0]
            out.extend(float(p[1]) for p in probs)
        return out

    def upright(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The crops, each turned by 180 degrees where the classifier is confident it is needed
        (each crop on its own; `ocrserve.documents.orientation` decides a page's at once)."""
        out = list(crops)
        for i, score in enumerate(self.flip_scores(crops)):
            if score > 0.5 and score > self.thresh:
                out[i] = cv2.rotate(crops[i], cv2.ROTATE_180)
        return out
