from __future__ import annotations

import json
import os
import re
import stat
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from ocrserve.errors import ConfigError
from ocrserve.server.auth import (
    INFERENCE_EXEMPT_PATHS,
    KEY_ENV,
    MANAGEMENT_EXEMPT_PATHS,
    InvalidToken,
    TokenAuthMiddleware,
    TokenStore,
    check_key,
    new_key,
    supplied_keys,
    token_routes,
)

API_MESSAGE = (
    "Token Authorization failed. Token either incorrect, expired, or not provided correctly"
)
TOKEN_API_MESSAGE = (
    "Token Authentication failed. Token either incorrect, expired, or not provided correctly"
)
START = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> TokenStore:
    return TokenStore.create(tmp_path / "key_file.json", clock=clock)


async def _ok(request: Request) -> Response:
    return JSONResponse({"path": request.url.path})


@pytest.fixture
def inference(store: TokenStore) -> Iterator[TestClient]:
    app = Starlette(
        routes=[
            Route("/", _ok, methods=["OPTIONS"]),
            Route("/ping", _ok),
            Route("/predictions/{name}", _ok, methods=["POST"]),
        ]
    )
    with TestClient(TokenAuthMiddleware(app, store, "inference", INFERENCE_EXEMPT_PATHS)) as c:
        yield c


@pytest.fixture
def management(store: TokenStore) -> TestClient:
    app = Starlette(routes=[Route("/models", _ok), *token_routes(store)])
    return TestClient(TokenAuthMiddleware(app, store, "management", MANAGEMENT_EXEMPT_PATHS))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_denied(response: httpx.Response, message: str = API_MESSAGE) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body == {"code": 401, "type": "InvalidKeyException", "message": message}


# -- the key file ------------------------------------------------------------------------


def test_key_file_has_torchserve_layout(store: TokenStore) -> None:
    doc = json.loads(store.path.read_text())
    assert list(doc) == ["management", "inference", "API"]
    assert set(doc["API"]) == {"key"}  # the API key never expires
    for name in ("management", "inference"):
        assert list(doc[name]) == ["key", "expiration time"]
        stamp = doc[name]["expiration time"]
        # Java's Instant.toString(): 2024-02-16T21:12:24.801167Z
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() == START + 3600
    assert {doc[n]["key"] for n in ("management", "inference", "API")} == {
        store.key("management"),
        store.key("inference"),
        store.key("API"),
    }
    keys = {store.key("management"), store.key("inference"), store.key("API")}
    assert len(keys) == 3 and all(len(key) >= 40 for key in keys)
    assert store.path.read_text().startswith('{\n  "management": {\n    "key": ')


def test_key_file_is_private_even_with_a_permissive_umask(tmp_path: Path, clock: Clock) -> None:
    old = os.umask(0)
    try:
        store = TokenStore.create(tmp_path / "key_file.json", clock=clock)
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
        store.rotate("inference")
        assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir()] == ["key_file.json"]  # no temp file left


def test_key_file_replaces_an_existing_world_readable_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "key_file.json"
    path.write_text("old")
    path.chmod(0o644)
    TokenStore.create(path, clock=clock)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_expiration_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token_expiration_min=0"):
        TokenStore.create(tmp_path / "key_file.json", expiration_minutes=0)


def test_fractional_minutes_as_torchserve(tmp_path: Path, clock: Clock) -> None:
    store = TokenStore.create(tmp_path / "k.json", expiration_minutes=0.25, clock=clock)
    assert store.expires_at("inference") == START + 15


def test_delete_file(store: TokenStore) -> None:
    store.delete_file()
    assert not store.path.exists()
    store.delete_file()  # twice is fine


# -- checking requests -------------------------------------------------------------------


def test_missing_header_is_401(inference: TestClient) -> None:
    assert_denied(inference.post("/predictions/m"))


def test_wrong_key_is_401(inference: TestClient, store: TokenStore) -> None:
    assert_denied(inference.post("/predictions/m", headers=bearer("abcd1234")))
    # another API's key does not open this one
    assert_denied(inference.post("/predictions/m", headers=bearer(store.key("management"))))
    assert_denied(inference.post("/predictions/m", headers=bearer(store.key("API"))))


def test_right_key_passes(inference: TestClient, store: TokenStore) -> None:
    response = inference.post("/predictions/m", headers=bearer(store.key("inference")))
    assert response.status_code == 200
    assert response.json() == {"path": "/predictions/m"}


def test_expired_key_is_401(inference: TestClient, store: TokenStore, clock: Clock) -> None:
    headers = bearer(store.key("inference"))
    clock.now = START + 3600 - 0.001
    assert inference.post("/predictions/m", headers=headers).status_code == 200
    clock.now = START + 3600  # TorchServe: expired unless now is before the expiration
    assert_denied(inference.post("/predictions/m", headers=headers))


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "{key}",
        "Bearer {key} extra",
        "Bearer {key}x",
        "Bearer{key}",
        "Token {key}",
        "Bearer " + "a" * 100_000,
    ],
)
def test_malformed_headers_are_401(inference: TestClient, store: TokenStore, value: str) -> None:
    headers = {"Authorization": value.format(key=store.key("inference"))}
    assert_denied(inference.post("/predictions/m", headers=headers))


@pytest.mark.parametrize(
    "raw", ["Bearer ké".encode(), b"Bearer \xff\xfe", "Bearer é".encode("latin-1")]
)
def test_non_ascii_headers_are_401_not_500(inference: TestClient, raw: bytes) -> None:
    assert_denied(inference.post("/predictions/m", headers={"Authorization": raw}))


def test_non_ascii_and_odd_values_in_check(store: TokenStore) -> None:
    for value in (None, "", "Bearer ké", "Bearer \x00", "Bearer \u2028", "x" * 10_000):
        with pytest.raises(InvalidToken):
            store.check("inference", value)


@pytest.mark.parametrize(
    "template", ["Bearer  {key}", "bearer {key}", "Bearer\t{key}", " Bearer {key} "]
)
def test_lenient_spacing_and_scheme_case(
    inference: TestClient, store: TokenStore, template: str
) -> None:
    headers = {"Authorization": template.format(key=store.key("inference"))}
    assert inference.post("/predictions/m", headers=headers).status_code == 200


def test_exempt_paths_are_exact(inference: TestClient) -> None:
    assert inference.get("/ping").status_code == 200
    assert inference.options("/").status_code == 200
    assert_denied(inference.get("/ping/x"))
    assert_denied(inference.get("/pingx"))
    assert_denied(inference.post("/ping/../predictions/m"))


def test_management_key_guards_management(management: TestClient, store: TokenStore) -> None:
    assert_denied(management.get("/models"))
    assert_denied(management.get("/models", headers=bearer(store.key("inference"))))
    assert management.get("/models", headers=bearer(store.key("management"))).status_code == 200


# -- GET /token ---------------------------------------------------------------------------


def test_token_route_needs_the_api_key(management: TestClient, store: TokenStore) -> None:
    assert_denied(management.get("/token?type=management"), TOKEN_API_MESSAGE)
    for key in (store.key("management"), store.key("inference"), "abcd1234"):
        assert_denied(
            management.get("/token?type=management", headers=bearer(key)), TOKEN_API_MESSAGE
        )


def test_rotate_management_invalidates_the_old_key(
    management: TestClient, store: TokenStore
) -> None:
    old, inference_key = store.key("management"), store.key("inference")
    response = management.get("/token?type=management", headers=bearer(store.key("API")))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    new = json.loads(store.path.read_text())["management"]["key"]
    assert new == store.key("management") != old
    assert new not in response.text  # the new key is read from the file, never sent
    assert store.key("inference") == inference_key
    assert_denied(management.get("/models", headers=bearer(old)))
    assert management.get("/models", headers=bearer(new)).status_code == 200


def test_rotate_inference_invalidates_the_old_key(
    management: TestClient, inference: TestClient, store: TokenStore
) -> None:
    old, management_key = store.key("inference"), store.key("management")
    response = management.get("/token?type=inference", headers=bearer(store.key("API")))
    assert response.status_code == 200
    new = json.loads(store.path.read_text())["inference"]["key"]
    assert new == store.key("inference") != old
    assert store.key("management") == management_key
    assert_denied(inference.post("/predictions/m", headers=bearer(old)))
    assert inference.post("/predictions/m", headers=bearer(new)).status_code == 200


def test_rotate_renews_an_expired_key(
    management: TestClient, store: TokenStore, clock: Clock
) -> None:
    clock.now = START + 10 * 3600  # management and inference expired; API never does
    assert_denied(management.get("/models", headers=bearer(store.key("management"))))
    response = management.get("/token?type=management", headers=bearer(store.key("API")))
    assert response.status_code == 200
    assert store.expires_at("management") == clock.now + 3600
    assert management.get("/models", headers=bearer(store.key("management"))).status_code == 200


@pytest.mark.parametrize("query", ["", "?type=API", "?type=bogus", "?type=Management"])
def test_token_route_rejects_other_types(
    management: TestClient, store: TokenStore, query: str
) -> None:
    before = store.path.read_text()
    response = management.get(f"/token{query}", headers=bearer(store.key("API")))
    assert response.status_code == 400
    assert response.json()["type"] == "BadRequestException"
    assert "type=management" in response.json()["message"]
    assert store.path.read_text() == before


def test_rotate_refuses_the_api_key(store: TokenStore) -> None:
    with pytest.raises(ValueError, match="API"):
        store.rotate("API")  # type: ignore[arg-type]


def test_concurrent_rotations_leave_a_consistent_file(store: TokenStore) -> None:
    def spin() -> None:
        for _ in range(20):
            store.rotate("inference")
            store.rotate("management")

    threads = [threading.Thread(target=spin) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    doc = json.loads(store.path.read_text())
    assert doc["inference"]["key"] == store.key("inference")
    assert doc["management"]["key"] == store.key("management")
    store.check("inference", f"Bearer {store.key('inference')}")


def test_keys_never_begin_with_a_dash(store: TokenStore) -> None:
    # One token_urlsafe in 64 begins with "-"; 20000 keys would hold ~300 such.
    keys = [new_key() for _ in range(20000)]
    assert not [k for k in keys if k.startswith("-")]
    assert len(set(keys)) == len(keys) and all(len(k) == 43 for k in keys)
    assert not any(store.rotate("inference").startswith("-") for _ in range(2000))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("-" + "a" * 40, "must not begin with '-'"),
        ("a" * 31, "32 to 256 characters long, not 31"),
        ("a" * 257, "32 to 256 characters long, not 257"),
        ("a" * 40 + " b", "may only hold"),
        ("a" * 40 + "\u00e9", "may only hold"),
    ],
)
def test_supplied_key_is_checked_and_never_echoed(value: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_key(value, "OCRSERVE_API_KEY")
    assert why in info.value.message and "OCRSERVE_API_KEY" in info.value.message
    assert value not in info.value.message
    assert check_key("a" * 32, "X") == "a" * 32


def test_supplied_keys_must_differ() -> None:
    same = "k" * 40
    with pytest.raises(ConfigError, match="must differ"):
        supplied_keys({KEY_ENV["inference"]: same, KEY_ENV["API"]: same})
    assert supplied_keys({KEY_ENV["management"]: same, "OTHER": "x"}) == {"management": same}


def test_supplied_keys_do_not_expire_until_rotated(tmp_path: Path, clock: Clock) -> None:
    inference, api = "i" * 40, "A" * 40
    store = TokenStore.create(
        tmp_path / "k.json", 1, clock=clock, supplied={"inference": inference, "API": api}
    )
    doc = json.loads((tmp_path / "k.json").read_text())
    assert doc["inference"] == {"key": inference} and doc["API"] == {"key": api}
    assert "expiration time" in doc["management"]
    clock.now += 3600
    store.check("inference", f"Bearer {inference}")
    with pytest.raises(InvalidToken):
        store.check("management", f"Bearer {store.key('management')}")
    rotated = store.rotate("inference")  # /token replaces it with a random, expiring one
    with pytest.raises(InvalidToken):
        store.check("inference", f"Bearer {inference}")
    store.check("inference", f"Bearer {rotated}")
    clock.now += 61
    with pytest.raises(InvalidToken):
        store.check("inference", f"Bearer {rotated}")
