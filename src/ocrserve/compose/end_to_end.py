"""A text detector and a text recognizer of any family composed into end-to-end OCR.

The detector's ``boundary_result`` lines are put in reading order (top to bottom, left to right:
`ocrserve.ppocr.e2e.reading_order`; columns one after another with ``reading_order=columns``;
with ``orientation`` a page on its side or upside down is turned upright first, as the bundled
``ocr`` model does: `ocrserve.documents.orientation`) and cut out of the image: a
quadrilateral is rectified by a perspective transform (`ocrserve.ppocr.e2e.crop_quad`,
PaddleOCR's ``get_rotate_crop_image``); a polygon of more than 4 vertices (TextSnake, FCENet,
PSENet, PANet with ``text_repr_type="poly"``) is cut by its minimum-area rectangle, which is
then also the line's ``box``: curved text comes out as the straight band around it. The crops,
turned upright by the angle classifier when there is one, are sorted by aspect ratio and
handed to the recognizer's ``predict`` ``rec_batch`` at a time, so a batch holds crops of
similar width (padding stays small) and a page of N lines costs ``ceil(N / rec_batch)``
recognizer calls. The answer is the ``e2e`` form of the ``ocr`` model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ocrserve.documents.orientation import orient_pages
from ocrserve.errors import ModelLoadError
from ocrserve.ppocr.det import order_clockwise
from ocrserve.ppocr.e2e import crop_quad, e2e_answers, line_order, reading_order
from ocrserve.ppocr.rec import PPOCRAngleClassifier
from ocrserve.predictor import Predictor, predict_with

__all__ = [
    "ComposedEndToEnd",
    "Line",
    "line_quad",
    "lines_and_crops",
    "reading_of",
    "text_and_score",
]

#: One detected line: its quadrilateral (clockwise from top-left) and its detection score.
Line = tuple[np.ndarray, float]


def line_quad(boundary: Sequence[float]) -> Line:
    """A ``boundary_result`` entry ``[x1, y1, ..., xn, yn, score]`` as a quadrilateral and score:
    4 vertices as they are (ordered clockwise), more by their minimum-area rectangle."""
    points = np.asarray(boundary[:-1], dtype=np.float32).reshape(-1, 2)
    if len(points) < 3:
        raise ValueError(f"a text line needs at least 3 vertices, the detector gave {len(points)}")
    if len(points) != 4:
        points = cv2.boxPoints(cv2.minAreaRect(points)).astype(np.float32)
    return order_clockwise(points), float(boundary[-1])


def lines_and_crops(
    image: np.ndarray,
    boundaries: Sequence[Sequence[float]],
    order: Callable[[Sequence[np.ndarray]], list[int]] = reading_order,
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """The detector's lines in reading order, each with its crop: ``(quad, score, crop)``."""
    lines = [line_quad(b) for b in boundaries]
    ranked = order([quad for quad, _ in lines])
    return [(lines[i][0], lines[i][1], crop_quad(image, lines[i][0])) for i in ranked]


def text_and_score(answer: dict[str, Any]) -> tuple[str, float]:
    """A recognizer's ``{"text", "score"}``; a per-character score list (MMOCR's ``simple_test``
    recognizers, NRTR) is averaged over the text's length as MMOCR 0.x's ``ocr.py`` did."""
    text, score = str(answer.get("text", "")), answer.get("score", 0.0)
    if isinstance(score, (list, tuple)):
        score = sum(float(s) for s in score) / max(1, len(text))
    return text, float(score)


def reading_of(answer: dict[str, Any]) -> tuple[str, float, list[float]]:
    """`text_and_score` with the character scores: the answer's ``char_scores``, or its
    per-character ``score`` list (NRTR's), else none."""
    text, score = text_and_score(answer)
    chars = answer.get("char_scores")
    if chars is None and isinstance(answer.get("score"), (list, tuple)):
        chars = answer["score"]
    return text, score, [float(c) for c in chars or []]


#: The options the composed model hands its detector.
_DET_OPTIONS = ("box_score_threshold", "max_side")


class ComposedEndToEnd:
    """Detection, optional angle classification and recognition by three separate models."""

    task = "e2e"

    def __init__(
        self,
        detector: Predictor,
        recognizer: Predictor,
        classifier: PPOCRAngleClassifier | None = None,
        *,
        rec_batch: int = 16,
        drop_score: float = 0.0,
    ) -> None:
        for role, part, task in (("det", detector, "textdet"), ("rec", recognizer, "textrecog")):
            if part.task != task:
                raise ModelLoadError(f"the {role} part is a {part.task} model, not {task}")
        if int(rec_batch) < 1:
            raise ModelLoadError(f"rec_batch must be at least 1, not {rec_batch}")
        self.detector = detector
        self.recognizer = recognizer
        self.classifier = classifier
        self.rec_batch = int(rec_batch)
        self.drop_score = float(drop_score)
        #: Images are turned as the detector reads them; crops are cut from those pixels.
        self.exif_orientation = detector.exif_orientation

    def recognize(
        self, crops: Sequence[np.ndarray], char_scores: bool = False
    ) -> list[tuple[str, float, list[float]]]:
        """Text, score and character scores per crop: sorted by aspect ratio, ``rec_batch``
        crops per call (the recognizer is asked for character scores when ``char_scores``)."""
        ratios = [c.shape[1] / max(c.shape[0], 1) for c in crops]
        order = [int(i) for i in np.argsort(ratios, kind="stable")]
        results: list[tuple[str, float, list[float]]] = [("", 0.0, [])] * len(crops)
        options = {"char_scores": True} if char_scores else None
        for start in range(0, len(order), self.rec_batch):
            chunk = order[start : start + self.rec_batch]
            answers = predict_with(self.recognizer, [crops[i] for i in chunk], options)
            for i, answer in zip(chunk, answers):
                results[i] = reading_of(answer)
        return results

    def predict(
        self, images: Sequence[np.ndarray], options: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        opts = options or {}
        det_options = {k: opts[k] for k in _DET_OPTIONS if k in opts}
        detected = predict_with(self.detector, images, det_options)
        order = line_order(opts)
        if opts.get("orientation") and not opts.get("detect_only"):
            return self._oriented(images, detected, det_options, order, opts)
        per_image: list[list[tuple[np.ndarray, float, np.ndarray]]] = []
        crops: list[np.ndarray] = []
        for image, answer in zip(images, detected):
            lines = lines_and_crops(image, answer["boundary_result"], order)
            per_image.append(lines)
            crops.extend(crop for _, _, crop in lines)
        found = [[(quad, score) for quad, score, _ in image_lines] for image_lines in per_image]
        if opts.get("detect_only"):
            return e2e_answers(found, [], 0.0, detect_only=True)
        # Every crop of every image of the batch goes through cls and rec together.
        if self.classifier is not None and crops:
            crops = self.classifier.upright(crops)
        with_chars = bool(opts.get("char_scores"))
        texts = self.recognize(crops, with_chars)
        drop_score = float(opts.get("drop_score", self.drop_score))
        return e2e_answers(found, texts, drop_score, char_scores=with_chars)

    def _oriented(
        self,
        images: Sequence[np.ndarray],
        detected: Sequence[dict[str, Any]],
        det_options: Mapping[str, Any],
        order: Callable[[Sequence[np.ndarray]], list[int]],
        opts: Mapping[str, Any],
    ) -> list[dict[str, Any]]:
        """`predict` with each page's orientation decided first (`orient_pages`)."""

        def detect(image: np.ndarray) -> list[Line]:
            (answer,) = predict_with(self.detector, [image], det_options)
            return [line_quad(b) for b in answer["boundary_result"]]

        pages = orient_pages(
            images,
            [[line_quad(b) for b in answer["boundary_result"]] for answer in detected],
            crop=crop_quad,
            detect=detect,
            order=order,
            flip_scores=self.classifier.flip_scores if self.classifier else None,
        )
        with_chars = bool(opts.get("char_scores"))
        texts = self.recognize([c for page in pages for c in page.crops], with_chars)
        drop_score = float(opts.get("drop_score", self.drop_score))
        answers = e2e_answers(
            [page.lines for page in pages], texts, drop_score, char_scores=with_chars
        )
        for answer, page in zip(answers, pages):
            answer["rotation"] = page.rotation
        return answers
