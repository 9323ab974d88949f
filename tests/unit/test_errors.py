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


@pytest.mark.parametrize(
    "status,type_,cls",
    [
        (404, "ModelNotFoundException", errors.ModelNotFound),
        (404, "ModelVersionNotFoundException", errors.ModelVersionNotFound),
        (400, "BadRequestException", errors.BadRequest),
        (401, "InvalidKeyException", errors.InvalidToken),
        (503, "ServiceUnavailableException", errors.ServiceUnavailable),
        (500, "InternalServerException", errors.InternalServerError),
        (409, "ConflictStatusException", errors.Conflict),
    ],
)
def test_an_answer_raises_the_class_its_type_names(
    status: int, type_: str, cls: type[errors.OcrServeError]
) -> None:
    exc = errors.error_from_answer(status, {"code": status, "type": type_, "message": "m"})
    assert type(exc) is cls and (exc.status, exc.type, exc.message) == (status, type_, "m")


def test_an_unknown_type_or_a_body_that_is_not_json_keeps_status_and_text() -> None:
    exc = errors.error_from_answer(507, {"code": 507, "type": "OtherException", "message": "m"})
    assert type(exc) is errors.OcrServeError and (exc.status, exc.type) == (507, "OtherException")
    exc = errors.error_from_answer(502, None, "<html>bad gateway</html>")
    assert (exc.status, exc.type, exc.message) == (
        502, "InternalServerException", "<html>bad gateway</html>"
    )  # fmt: skip
