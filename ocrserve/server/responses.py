"""JSON responses shaped like TorchServe's: indented bodies, no-cache headers, a request id."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.responses import Response

from ocrserve.errors import OcrServeError

__all__ = ["NO_CACHE_HEADERS", "error_response", "json_response"]

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
