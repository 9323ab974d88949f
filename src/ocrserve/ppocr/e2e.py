"""End-to-end OCR: detect lines, rectify each crop, fix its orientation, recognise all as a batch.

The response is MMOCR 0.x's end-to-end form, in reading order: PaddleOCR's rows
(`reading_order`), or columns one after another with ``reading_order=columns``
(`ocrserve.documents.order`). Crops are cut with a perspective transform onto an axis-aligned
rectangle (bicubic, replicated border; turned 90 degrees when much taller than wide), as
PaddleOCR's ``get_rotate_crop_image`` does; lines recognised with a score below ``drop_score``
(PaddleOCR's 0.5) are dropped. The angle classifier turns each line on its own, or, with
``orientation``, the page's orientation is decided from all its lines first
(`ocrserve.documents.orientation`) and the answer says the turn applied (``rotation``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ocrserve.documents.order import column_order
from ocrserve.documents.orientation import OrientedPage, orient_pages
from ocrserve.ppocr.det import PPOCRDetector
from ocrserve.ppocr.rec import PPOCRAngleClassifier, PPOCRRecognizer

__all__ = ["PPOCREndToEnd", "crop_quad", "e2e_answers", "line_order", "reading_order"]


def crop_quad(img: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """Warp the quadrilateral (clockwise from top-left) to an upright rectangle."""
    pts = quad.astype(np.float32)
    width = max(1, int(max(np.linalg.norm(pts[0] - pts[1]), np.linalg.norm(pts[2] - pts[3]))))
    height = max(1, int(max(np.linalg.norm(pts[0] - pts[3]), np.linalg.norm(pts[1] - pts[2]))))
    dst = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(pts, dst)
    crop = cv2.warpPerspective(
        img, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    if crop.shape[0] >= 1.5 * crop.shape[1]:
        crop = np.ascontiguousarray(np.rot90(crop))
    return crop


def reading_order(quads: Sequence[np.ndarray], line_tol: float = 10.0) -> list[int]:
    """Indices sorted top-to-bottom, then left-to-right among boxes whose tops are within
    ``line_tol`` pixels (PaddleOCR's ``sorted_boxes`` rule)."""
    order = sorted(range(len(quads)), key=lambda i: (quads[i][0][1], quads[i][0][0]))
    for i in range(len(order) - 1):
        for j in range(i, -1, -1):
            a, b = quads[order[j]][0], quads[order[j + 1]][0]
            if abs(b[1] - a[1]) < line_tol and b[0] < a[0]:
                order[j], order[j + 1] = order[j + 1], order[j]
            else:
                break
    return order


class PPOCREndToEnd:
    """Detection + angle classification + recognition (any PP-OCRv3 to v6 networks)."""

    task = "e2e"
    exif_orientation = True

    def __init__(
        self,
        detector: PPOCRDetector,
        recognizer: PPOCRRecognizer,
        classifier: PPOCRAngleClassifier | None = None,
        drop_score: float = 0.5,
    ) -> None:
        self.detector = detector
        self.classifier = classifier
        self.recognizer = recognizer
        self.drop_score = drop_score

    def predict(
        self, images: Sequence[np.ndarray], options: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        opts = options or {}
        settings = self.detector.settings_for(opts)
        max_side = opts.get("max_side")
        per_image = [self.detector.detect(img, settings, max_side) for img in images]
        if opts.get("detect_only"):
            return e2e_answers(per_image, [], 0.0, detect_only=True)
        order = line_order(opts)
        # Every crop of every image of the batch goes through cls and rec together.
        crops: list[np.ndarray] = []
        pages: list[OrientedPage] = []
        if opts.get("orientation"):
            pages = orient_pages(
                images,
                per_image,
                crop=crop_quad,
                detect=lambda img: self.detector.detect(img, settings, max_side),
                order=order,
                flip_scores=self.classifier.flip_scores if self.classifier else None,
            )
            per_image = [page.lines for page in pages]
            crops = [c for page in pages for c in page.crops]
        else:
            for n, (img, boxes) in enumerate(zip(images, per_image)):
                ranked = order([b for b, _ in boxes])
                per_image[n] = [boxes[i] for i in ranked]
                crops.extend(crop_quad(img, quad) for quad, _ in per_image[n])
            if self.classifier is not None and crops:
                crops = self.classifier.upright(crops)
        texts = self.recognizer.read(crops) if crops else []
        drop_score = float(opts.get("drop_score", self.drop_score))
        answers = e2e_answers(
            per_image, texts, drop_score, char_scores=bool(opts.get("char_scores"))
        )
        for answer, page in zip(answers, pages):
            answer["rotation"] = page.rotation
        return answers


def line_order(options: Mapping[str, Any]) -> Callable[[Sequence[np.ndarray]], list[int]]:
    """The ``reading_order`` option's rule: ``columns`` (`ocrserve.documents.order`) or
    ``rows`` (the default, `reading_order`)."""
    if options.get("reading_order") == "columns":
        return column_order
    return reading_order


def e2e_answers(
    lines: Sequence[Sequence[tuple[np.ndarray, float]]],
    texts: Iterable[tuple[Any, ...]],
    drop_score: float,
    *,
    char_scores: bool = False,
    detect_only: bool = False,
) -> list[dict[str, Any]]:
    """The ``e2e`` answer of each image: its ``(quad, box score)`` lines, in order, with the next
    ``(text, score[, character scores])`` of ``texts`` each; lines read with a score under
    ``drop_score`` left out. ``detect_only``: the lines' boxes alone (``texts`` is not read);
    ``char_scores``: each line also has its characters' scores (the third item of its text)."""
    answers = []
    if detect_only:
        for image_lines in lines:
            result = [
                {"box": [float(v) for v in quad.reshape(-1)], "box_score": round(box_score, 6)}
                for quad, box_score in image_lines
            ]
            answers.append({"result": result})
        return answers
    texts = iter(texts)
    for image_lines in lines:
        result = []
        for (quad, box_score), reading in zip(image_lines, texts):
            text, score = reading[0], reading[1]
            if score < drop_score:
                continue
            line = {
                "box": [float(v) for v in quad.reshape(-1)],
                "box_score": round(box_score, 6),
                "text": text,
                "text_score": round(score, 6),
            }
            if char_scores:
                line["char_scores"] = list(reading[2]) if len(reading) > 2 else []
            result.append(line)
        answers.append({"result": result})
    return answers
