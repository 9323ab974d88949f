"""The seam between the engine and models: a `Predictor` turns decoded images into results.

A predictor never sees a request: it gets ``H x W x 3`` uint8 BGR arrays and returns one JSON-able
dict per image, in the response form of its task (TorchServe/MMOCR shapes):

- ``textdet``: ``{"boundary_result": [[x1, y1, ..., xn, yn, score], ...]}``
- ``textrecog``: ``{"text": str, "score": float}``
- ``e2e``: ``{"result": [{"box": [...], "box_score": f, "text": str, "text_score": f}, ...]}``
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # the package's top level imports this module: keep it free of numpy
    import numpy as np

__all__ = ["Predictor", "Task", "predict_with"]

Task = Literal["textdet", "textrecog", "e2e"]


@runtime_checkable
class Predictor(Protocol):
    """What a worker runs. Implementations live in `ocrserve.ppocr` (and later MMOCR models)."""

    @property
    def task(self) -> str:
        """One of `Task`'s values: the response form."""
        ...

    @property
    def exif_orientation(self) -> bool:
        """Whether images are rotated by their EXIF orientation before prediction."""
        ...

    def predict(
        self, images: Sequence[np.ndarray], options: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Predict a batch of BGR uint8 images; one result dict per image, in order.

        ``options`` are a request's validated options for the task (`ocrserve.options`); a
        predictor that takes none may leave the parameter out (see `predict_with`).
        """
        ...


def predict_with(
    predictor: Any, images: Sequence[np.ndarray], options: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """``predictor.predict(images, options)``; without options ``predict(images)``, so that a
    predictor written before options existed still serves requests that set none."""
    if options:
        return list(predictor.predict(images, options))
    return list(predictor.predict(images))
