"""JSON responses shaped like TorchServe's: indented bodies, no-cache headers, a request id."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

from ocrserve.errors import OcrServeError

__all__ = [
    "KSERVE_PREFIXES",
    "NO_CACHE_HEADERS",
    "error_response",
    "error_response_for",
    "json_response",
]

#: Paths of the KServe protocols, whose errors are ``{"error": "..."}`` (server/kserve_v*.py).
KSERVE_PREFIXES = ("/v1/", "/v2/")

NO_CACHE_HEADERS = {
    "pragma": "no-cache",
    "cache-control": "no-cache; no-store, must-revalidate, private",
    "expires": "Thu, 01 Jan 1970 00:00:00 UTC",
}


def json_response(payload: Any, status: int = 200, *, trailing_newline: bool = True) -> Response:
    """TorchServe indents its JSON by two spaces; frontend messages end with a newline."""
    text = json.dumps(payload, indent=2, ensure_ascii=False) + ("\n" if trailing_newline else "")
    headers = {"x-request-id": str(uuid.uuid4()), **NO_CACHE_HEADERS}
    return Response(text, status_code=status, media_type="application/json", headers=headers)


def error_response(exc: OcrServeError) -> Response:
    return json_response(exc.to_json(), exc.status)


def error_response_for(path: str, exc: OcrServeError) -> Response:
    """The error in the form of the API ``path`` belongs to: KServe's or TorchServe's."""
    if path == "/v2" or path.startswith(KSERVE_PREFIXES):
        return json_response(exc.to_kserve_json(), exc.status)
    return error_response(exc)
