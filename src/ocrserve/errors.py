"""The one exception tree of ocrserve, and its mapping to TorchServe's error JSON.

Every error a client can see is one of these classes. Each carries the HTTP status and the
TorchServe exception name (`type`) that TorchServe 0.12 uses for the same situation, so the
body is always ``{"code": N, "type": "...", "message": "..."}``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ArchiveError",
    "BadRequest",
    "CheckpointError",
    "ConfigError",
    "Conflict",
    "DownloadArchiveError",
    "InternalServerError",
    "InvalidInput",
    "InvalidModelVersion",
    "InvalidToken",
    "ModelLoadError",
    "ModelNotFound",
    "ModelVersionNotFound",
    "OcrServeError",
    "PayloadTooLarge",
    "ResourceNotFound",
    "ResultFormatError",
    "ServiceUnavailable",
    "WorkerTimeout",
    "error_body",
    "error_from_answer",
]


class OcrServeError(Exception):
    """Base class: an error with an HTTP status and a TorchServe exception type."""

    status: int = 500
    type: str = "InternalServerException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, Any]:
        return error_body(self.status, self.type, self.message)

    def to_kserve_json(self) -> dict[str, Any]:
        """The KServe v1 and v2 (Open Inference Protocol) error body; the status is the same."""
        return {"error": self.message}


class BadRequest(OcrServeError):
    """Raised when a request's parameters are malformed."""

    status = 400
    type = "BadRequestException"


class InvalidInput(BadRequest):
    """Raised when a request body is empty, not an image, or an image that cannot be used."""


class DownloadArchiveError(BadRequest):
    """Raised when a registration URL cannot be downloaded."""

    type = "DownloadArchiveException"


class PayloadTooLarge(OcrServeError):
    """Raised when a request body exceeds ``max_request_size`` or an image ``max_image_pixels``."""

    status = 413
    type = "RequestEntityTooLargeException"


class InvalidToken(OcrServeError):
    """Raised when a bearer key is missing, malformed, wrong or expired (TorchServe says 400;
    401 is what HTTP means, and clients treat both as an error)."""

    status = 401
    type = "InvalidKeyException"


class ResourceNotFound(OcrServeError):
    """Raised for a path that no route serves."""

    status = 404
    type = "ResourceNotFoundException"

    def __init__(
        self, message: str = "Requested resource is not found, please refer to API document."
    ) -> None:
        super().__init__(message)


class ModelNotFound(OcrServeError):
    """Raised when a request names a model or version that is not registered."""

    status = 404
    type = "ModelNotFoundException"


class MethodNotAllowed(OcrServeError):
    """Raised when a route exists but not for the request's method."""

    status = 405
    type = "MethodNotAllowedException"

    def __init__(
        self, message: str = "Requested method is not allowed, please refer to API document."
    ) -> None:
        super().__init__(message)


class Conflict(OcrServeError):
    """Raised when registering a model version that is already registered."""

    status = 409
    type = "ConflictStatusException"


class ServiceUnavailable(OcrServeError):
    """Raised when a model has no live worker or its job queue is full."""

    status = 503
    type = "ServiceUnavailableException"


class WorkerTimeout(OcrServeError):
    """Raised when a worker does not answer within ``default_response_timeout``."""

    status = 504
    type = "WorkerTimeoutException"


class InternalServerError(OcrServeError):
    """Raised when a worker fails while running a model (a bug or a crashed worker)."""

    status = 500
    type = "InternalServerException"


class ModelLoadError(OcrServeError):
    """Raised when a model's files cannot be loaded; the model is reported unhealthy."""

    status = 500
    type = "InternalServerException"


class ConfigError(OcrServeError):
    """Raised for a bad setting or MMOCR config value; names the key (or the file and line)."""

    status = 400
    type = "BadRequestException"


class CheckpointError(ModelLoadError):
    """Raised when a checkpoint cannot be read safely or does not fit the model (lists the keys)."""


class ArchiveError(ModelLoadError):
    """Raised when an archive is unsafe, malformed or not a model ocrserve can serve."""


class ModelVersionNotFound(ModelNotFound):
    """Raised for a version a registered model does not have (TorchServe's own type)."""

    type = "ModelVersionNotFoundException"


class InvalidModelVersion(OcrServeError):
    """Raised when removing the default version while other versions exist."""

    status = 403
    type = "InvalidModelVersionException"


class ResultFormatError(ValueError):
    """Raised by `ocrserve compare` when an answer is not in the response form of its task."""


_BY_TYPE: dict[str, type[OcrServeError]] = {
    cls.__name__: cls
    for cls in (
        BadRequest,
        InvalidInput,
        DownloadArchiveError,
        PayloadTooLarge,
        ResourceNotFound,
        ModelNotFound,
        InvalidToken,
        MethodNotAllowed,
        Conflict,
        ServiceUnavailable,
        WorkerTimeout,
        InternalServerError,
        ModelLoadError,
        ConfigError,
        CheckpointError,
        ArchiveError,
        ModelVersionNotFound,
        InvalidModelVersion,
    )
}


#: TorchServe's ``type`` -> the class a client raises for it: the first class listed for a type
#: (the general one: ``BadRequestException`` is `BadRequest`, not `InvalidInput`).
_BY_ANSWER_TYPE: dict[str, type[OcrServeError]] = {}
for _cls in _BY_TYPE.values():
    _BY_ANSWER_TYPE.setdefault(_cls.type, _cls)


def error_from_answer(status: int, body: Any, text: str = "") -> OcrServeError:
    """The exception for a server's error answer: the class named by TorchServe's ``type`` in
    ``{"code", "type", "message"}``, with the answer's status, type and message. A type no class
    has (another server's) gives an `OcrServeError` carrying that status and type."""
    doc = body if isinstance(body, dict) else {}
    kind = str(doc["type"]) if isinstance(doc.get("type"), str) else ""
    message = str(doc["message"]) if isinstance(doc.get("message"), str) else text[:500]
    cls = _BY_ANSWER_TYPE.get(kind, OcrServeError)
    exc = cls(message or f"HTTP {status}")
    exc.status = status
    if kind:
        exc.type = kind
    elif cls is OcrServeError:
        exc.type = "BadRequestException" if status < 500 else "InternalServerException"
    return exc


def error_body(status: int, type_: str, message: str) -> dict[str, Any]:
    """TorchServe's error JSON."""
    return {"code": status, "type": type_, "message": message}


def error_name(exc: OcrServeError) -> str:
    """The class name used to send an error across the worker boundary."""
    return type(exc).__name__


def error_from_name(name: str, message: str) -> OcrServeError:
    """Rebuild an error sent by a worker; unknown names become internal errors."""
    return _BY_TYPE.get(name, InternalServerError)(message)
