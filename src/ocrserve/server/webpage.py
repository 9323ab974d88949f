"""The page to try the served models: ``GET /`` of the inference port and its static files.

The files live in ``ocrserve/server/web/`` (package data): no build step, no CDN. Every answer
carries a strict Content-Security-Policy (scripts and styles from this origin only, no inline
code, images from this origin or the page's own ``blob:`` URLs). The page and its files need no
key; what they call (``/ocrserve/models``, ``/predictions/...``) asks for the inference key like
any client. ``enable_web_page=false`` leaves ``GET /`` as TorchServe has it (405).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ocrserve.errors import ResourceNotFound

__all__ = ["CONTENT_SECURITY_POLICY", "WEB_PAGE_PATHS", "web_page_routes"]

WEB_DIR = Path(__file__).resolve().parent / "web"
#: The static files, by the path they are served at, and their media types.
FILES = {
    "/web/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/web/style.css": ("style.css", "text/css; charset=utf-8"),
    "/web/icon.svg": ("icon.svg", "image/svg+xml"),
}
#: Paths served without a key (``/`` already is: ``OPTIONS /`` is the API description).
WEB_PAGE_PATHS: tuple[str, ...] = tuple(FILES)

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


def _file(name: str, media_type: str) -> Response:
    return Response((WEB_DIR / name).read_bytes(), media_type=media_type, headers=_HEADERS)


def web_page_routes() -> list[Route]:
    async def page(request: Request) -> Response:
        return _file("index.html", "text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        entry = FILES.get(request.url.path)
        if entry is None:  # pragma: no cover - only FILES' paths are routed here
            raise ResourceNotFound()
        return _file(*entry)

    return [
        Route("/", page, methods=["GET"]),
        *(Route(path, static, methods=["GET"]) for path in FILES),
    ]
