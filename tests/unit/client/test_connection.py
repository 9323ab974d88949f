"""Images as request bodies, the retry policy, and the error mapping the clients raise."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ocrserve import errors
from ocrserve.client import AsyncClient, Client
from ocrserve.client.connection import RetryPolicy, image_body


def _decode(body: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(body))
    assert image.format == "PNG"
    return image


def test_arrays_and_pil_images_become_lossless_pngs() -> None:
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(np.asarray(_decode(image_body(rgb))), rgb)
    gray = rgb[:, :, 0]
    assert np.array_equal(np.asarray(_decode(image_body(gray[:, :, None]))), gray)
    pil = Image.fromarray(rgb)
    assert np.array_equal(np.asarray(_decode(image_body(pil))), rgb)
    assert image_body(b"abc") == b"abc" and image_body(memoryview(b"xy")) == b"xy"


def test_what_cannot_be_sent_says_what_can() -> None:
    with pytest.raises(errors.ConfigError, match="H x W x 3"):
        image_body(np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(errors.ConfigError, match="a path, bytes, a NumPy array or a PIL image"):
        image_body(3)


def test_a_missing_image_file_is_pythons_file_not_found_error(tmp_path: Path) -> None:
    """What Python users catch for a missing file, from predict as from open(); predict_many
    with return_exceptions gives it in that image's place."""
    missing = tmp_path / "missing.png"
    with Client("http://127.0.0.1:9", token="k" * 43, retries=0) as client:
        with pytest.raises(FileNotFoundError, match="missing.png") as info:
            client.predict("ocr", missing)
        assert not isinstance(info.value, errors.OcrServeError)
        (answer,) = client.predict_many("ocr", [str(missing)], return_exceptions=True)
        assert isinstance(answer, FileNotFoundError)


async def _async_predict(path: Path) -> None:
    async with AsyncClient("http://127.0.0.1:9", token="k" * 43, retries=0) as client:
        await client.predict("ocr", path)


def test_the_async_client_raises_file_not_found_error_too(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        asyncio.run(_async_predict(tmp_path / "missing.png"))


def test_back_off_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(retries=6, backoff=0.5, max_backoff=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]


def test_what_is_worth_another_try() -> None:
    import httpx

    from ocrserve.client.connection import is_retryable

    request = httpx.Request("POST", "http://127.0.0.1:9/predictions/ocr")
    assert is_retryable(errors.ServiceUnavailable("queue full"))
    assert is_retryable(httpx.ConnectError("refused", request=request))
    assert is_retryable(httpx.RemoteProtocolError("closed", request=request))
    assert not is_retryable(httpx.ReadTimeout("slow", request=request))
    assert not is_retryable(errors.BadRequest("not an image"))
    assert not is_retryable(errors.WorkerTimeout("504"))


def test_the_management_url_defaults_to_8081_beside_8080_only() -> None:
    from ocrserve.client.connection import Server

    assert Server("127.0.0.1:8080", None).management_url == "http://127.0.0.1:8081"
    assert Server("http://[::1]:8080", None).management_url == "http://[::1]:8081"
    assert Server("http://127.0.0.1:9", "127.0.0.1:10").management_url == "http://127.0.0.1:10"
    lone = Server("http://127.0.0.1:9", None)
    assert lone.management_url is None
    with pytest.raises(errors.ConfigError, match="pass management_url"):
        lone.management("/models")
