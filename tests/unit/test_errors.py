from __future__ import annotations

import pytest

from ocrserve import errors


@pytest.mark.parametrize(
    "cls,status,type_",
    [
        (errors.ModelNotFound, 404, "ModelNotFoundException"),
        (errors.InvalidInput, 400, "BadRequestException"),
        (errors.PayloadTooLarge, 413, "RequestEntityTooLargeException"),
        (errors.ServiceUnavailable, 503, "ServiceUnavailableException"),
        (errors.WorkerTimeout, 504, "WorkerTimeoutException"),
        (errors.InternalServerError, 500, "InternalServerException"),
    ],
)
def test_torchserve_error_json(cls: type[errors.OcrServeError], status: int, type_: str) -> None:
    assert cls("boom").to_json() == {"code": status, "type": type_, "message": "boom"}


def test_round_trip_across_worker_boundary() -> None:
    exc = errors.InvalidInput("bad image")
    back = errors.error_from_name(errors.error_name(exc), exc.message)
    assert type(back) is errors.InvalidInput and back.message == "bad image"
    assert type(errors.error_from_name("Whatever", "x")) is errors.InternalServerError
