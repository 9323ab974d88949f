"""End-to-end OCR from parts: any text detector and any text recognizer (MMOCR or PaddleOCR
archives, mixed at will), plus PaddleOCR's angle classifier if given, served as one ``e2e`` model.

`ocrserve.compose.composer` writes the archive (``ocrserve compose``), the part archives' files in
``det/``, ``rec/`` and ``cls/``; `ocrserve.compose.end_to_end` is the predictor the loader builds
from the parts' own predictors. This module stays light: the HTTP process imports nothing here.
"""

from __future__ import annotations

__all__ = ["PARTS"]

#: Role -> the task a part archive must have (the classifier is an ONNX file, not an archive).
PARTS: dict[str, str] = {"det": "textdet", "rec": "textrecog"}
