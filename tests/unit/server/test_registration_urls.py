"""Registration URLs against ``allowed_urls``, with no network at all.

`management.Registrar` downloads through ``httpx.AsyncClient``; here every client gets a mock
transport that records what would have been requested and answers from memory. So addresses
that must never be contacted (cloud metadata, private ranges) can be named safely: the
property under test is that no request is even attempted. The end-to-end versions, against a
real origin on loopback, are in tests/integration/test_security.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrserve.archives.bundled import build_bundled_archive
from ocrserve.archives.store import ModelStore
from ocrserve.errors import BadRequest, ModelNotFound
from ocrserve.server import management
from ocrserve.server.management import Registrar


class Transport:
    """What the registrar asked for; answers with ``respond``."""

    def __init__(self) -> None:
        self.requested: list[str] = []
        self.respond: Callable[[httpx.Request], httpx.Response] = lambda r: httpx.Response(404)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requested.append(str(request.url))
        return self.respond(request)


@pytest.fixture()
def transport(monkeypatch: pytest.MonkeyPatch) -> Iterator[Transport]:
    recorder = Transport()
    real = httpx.AsyncClient

    def client(*args: Any, **kwargs: Any) -> httpx.AsyncClient:
        return real(*args, transport=httpx.MockTransport(recorder.handle), **kwargs)

    monkeypatch.setattr(management.httpx, "AsyncClient", client)
    yield recorder


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build_bundled_archive("ppocr_rec", tmp_path_factory.mktemp("archive")).read_bytes()


def _prepare(store: ModelStore, allowed: tuple[str, ...], url: str) -> Any:
    return asyncio.run(Registrar(store, allowed).prepare(url, "remote"))


@pytest.fixture()
def store(tmp_path: Path) -> ModelStore:
    root = tmp_path / "store"
    root.mkdir()
    return ModelStore(root, work=tmp_path / "work")


METADATA_AND_PRIVATE = [
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/x.mar",
    "http://[fd00:ec2::254]/latest/meta-data/x.mar",
    "http://metadata.google.internal/computeMetadata/v1/x.mar",
    "http://10.0.0.1/x.mar",
    "http://192.168.1.1/x.mar",
    "http://127.0.0.1:8081/models",
    "https://models.example.com@169.254.169.254/x.mar",
    "https://models.example.com.169.254.169.254.nip.io/x.mar",
    "https://169.254.169.254/models.example.com/x.mar",
    "https://models.example.com%40169.254.169.254/x.mar",
]


@pytest.mark.parametrize("url", METADATA_AND_PRIVATE)
def test_nothing_is_fetched_without_an_allow_list(
    store: ModelStore, transport: Transport, url: str
) -> None:
    with pytest.raises(ModelNotFound, match="does not match any allowed URL"):
        _prepare(store, (), url)
    assert transport.requested == []


@pytest.mark.parametrize("url", METADATA_AND_PRIVATE)
def test_internal_addresses_do_not_match_an_allow_list_for_one_host(
    store: ModelStore, transport: Transport, url: str
) -> None:
    with pytest.raises(ModelNotFound, match="does not match any allowed URL"):
        _prepare(store, (r"https://models\.example\.com/.*",), url)
    assert transport.requested == []


def test_redirect_to_metadata_is_not_followed(
    store: ModelStore, transport: Transport, archive: bytes
) -> None:
    transport.respond = lambda r: httpx.Response(
        302, headers={"location": "http://169.254.169.254/latest/meta-data/x.mar"}
    )
    with pytest.raises(BadRequest, match="Failed to download"):
        _prepare(store, (r"https://models\.example\.com/.*",), "https://models.example.com/x.mar")
    assert transport.requested == ["https://models.example.com/x.mar"]


def test_allowed_url_is_fetched_and_prepared(
    store: ModelStore, transport: Transport, archive: bytes
) -> None:
    transport.respond = lambda r: httpx.Response(200, content=archive)
    spec = _prepare(
        store, (r"https://models\.example\.com/.*",), "https://models.example.com/pub/rec.mar"
    )
    assert transport.requested == ["https://models.example.com/pub/rec.mar"]
    assert spec.name == "remote" and spec.task == "textrecog"


def test_allowed_url_is_prepared_without_a_model_store(
    tmp_path: Path, transport: Transport, archive: bytes
) -> None:
    transport.respond = lambda r: httpx.Response(200, content=archive)
    store = ModelStore(None, work=tmp_path / "work")
    spec = _prepare(
        store, (r"https://models\.example\.com/.*",), "https://models.example.com/pub/rec.mar"
    )
    assert spec.name == "remote"


@pytest.mark.parametrize(
    "url",
    [
        "https://models.example.com/pub/..%2f..%2f..%2fescaped.mar",
        "https://models.example.com/pub/rec.mar?/../../../escaped.mar",
    ],
)
def test_download_never_lands_outside_the_work_folder(
    tmp_path: Path, store: ModelStore, transport: Transport, archive: bytes, url: str
) -> None:
    """The download is named after the URL's last path segment, taken literally (or the URL
    is refused): no file called escaped.mar appears anywhere."""
    transport.respond = lambda r: httpx.Response(200, content=archive)
    try:
        _prepare(store, (r"https://models\.example\.com/pub/.*",), url)
    except ModelNotFound:
        pass
    assert list(tmp_path.rglob("escaped.mar")) == []
    assert all(store.work in p.parents for p in (store.work / "downloads").rglob("*"))
