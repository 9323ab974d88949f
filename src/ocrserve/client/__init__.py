"""The Python client of ocrserve (and of any TorchServe serving these models): `Client` and
`AsyncClient` on httpx, typed results, errors as `ocrserve.errors` classes."""

from __future__ import annotations

from ocrserve.client.async_client import AsyncClient
from ocrserve.client.results import (
    Box,
    Detection,
    Document,
    EndToEnd,
    Page,
    Recognition,
    Result,
    TextLine,
    parse_result,
)
from ocrserve.client.sync_client import Client

__all__ = [
    "AsyncClient",
    "Box",
    "Client",
    "Detection",
    "Document",
    "EndToEnd",
    "Page",
    "Recognition",
    "Result",
    "TextLine",
    "parse_result",
]
