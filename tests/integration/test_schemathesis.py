"""Schemathesis against the OpenAPI documents the server itself serves: no 5xx, ever.

Every operation of the inference document (``OPTIONS /``) and of the management document
(``GET /api-description``) gets generated requests, schema-valid and schema-violating, and
each answer must be under 500 and conform to the document: a documented status, content type,
headers and JSON schema. Operations that take a model name are also driven with a real
model's name so that generated bodies reach the image decoders, not only the 404.

Not checked: Schemathesis's positive-data acceptance and negative-data rejection. The
documents describe the body as any bytes (an image cannot be written as a JSON schema), so a
schema-valid body that is not an image is rightly a 400; register and unregister answer 405
while the model API is off; and ``limit`` that is not a number is ignored, as in TorchServe.

Two requests are never generated, because they are known to take the server down (see
tests/integration/test_hostile_input.py): scaling a real model (worker counts are not capped)
and registering an archive that exists (same, through ``initial_workers``). So ``PUT`` on a
model keeps the generated (unknown) names, and register's ``url`` is fixed to a missing
archive while every other parameter is generated.

Runs are derandomized: the same requests every run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess

schemathesis = pytest.importorskip("schemathesis", reason="needs schemathesis")
from hypothesis import HealthCheck, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import CHECKS, load_all_checks  # noqa: E402

EXAMPLES = 50  # per operation; about 2,000 requests in all
CHECK_NAMES = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
]

INFERENCE_OPERATIONS = [
    ("OPTIONS", "/"),
    ("GET", "/api-description"),
    ("GET", "/ping"),
    ("GET", "/ocrserve/models"),
    ("POST", "/predictions/{model_name}"),
    ("PUT", "/predictions/{model_name}"),
    ("POST", "/predictions/{model_name}/{model_version}"),
    ("PUT", "/predictions/{model_name}/{model_version}"),
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{model_name}"),
    ("GET", "/v2/models/{model_name}/ready"),
    ("POST", "/v2/models/{model_name}/infer"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}"),
    ("GET", "/v2/models/{model_name}/versions/{model_version}/ready"),
    ("POST", "/v2/models/{model_name}/versions/{model_version}/infer"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/{model_name}"),
    ("POST", "/v1/models/{model_name}:predict"),
]
MANAGEMENT_OPERATIONS = [
    ("OPTIONS", "/"),
    ("GET", "/api-description"),
    ("GET", "/models"),
    ("POST", "/models"),
    ("GET", "/models/{model_name}"),
    ("PUT", "/models/{model_name}"),
    ("DELETE", "/models/{model_name}"),
    ("GET", "/models/{model_name}/{model_version}"),
    ("PUT", "/models/{model_name}/{model_version}"),
    ("DELETE", "/models/{model_name}/{model_version}"),
    ("PUT", "/models/{model_name}/{model_version}/set-default"),
]


MODELS = ("ocr", "ppocr_det", "ppocr_rec")
#: Worker pids right after start, by model.
PIDS_AT_START: dict[str, list[int]] = {}


def _workers(srv: ServerProcess) -> dict[str, list[int]]:
    pids = {}
    for name in MODELS:
        (desc,) = httpx.get(f"{srv.management_url}/models/{name}", timeout=30).json()
        assert [w["status"] for w in desc["workers"]] == ["READY"], desc["workers"]
        pids[name] = [w["pid"] for w in desc["workers"]]
    return pids


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("schemathesis"), "--enable-model-api")
    try:
        server.wait_healthy()
        PIDS_AT_START.update(_workers(server))
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def documents(srv: ServerProcess) -> dict[str, Any]:
    inference = httpx.request("OPTIONS", srv.url + "/", timeout=30)
    management = httpx.get(srv.management_url + "/api-description", timeout=30)
    assert inference.status_code == management.status_code == 200
    return {"inference": inference.json(), "management": management.json()}


#: Statuses seen, by API, method and path (printed by the last test with -s).
SEEN: Counter[tuple[str, str, str, int]] = Counter()


def _fuzz(
    srv: ServerProcess,
    api: str,
    doc: dict[str, Any],
    method: str,
    path: str,
    fixed_paths: dict[str, str] | None = None,
    fixed_query: dict[str, str] | None = None,
) -> None:
    schema = schemathesis.openapi.from_dict(doc)
    operation = schema[path][method]
    base_url = srv.url if api == "inference" else srv.management_url
    load_all_checks()
    checks = CHECKS.get_by_names(CHECK_NAMES)
    variants: list[dict[str, Any]] = [{}]
    if fixed_paths:
        variants.append({"path_parameters": fixed_paths})
    strategies = [
        operation.as_strategy(mode, **variant, **({"query": fixed_query} if fixed_query else {}))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        for variant in variants
    ]

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.one_of(strategies))
    def run(case: Any) -> None:
        # Never scale or remove a real model (see the module docstring), even should the
        # document one day carry its name as an example.
        assume(
            api == "inference"
            or method not in ("PUT", "DELETE")
            or (case.path_parameters or {}).get("model_name") not in MODELS
        )
        response = case.call(base_url=base_url, timeout=60)
        SEEN[(api, method, path, response.status_code)] += 1
        assert response.status_code < 500, (response.status_code, response.text[:500])
        case.validate_response(response, checks=checks)

    run()
    # The server is still whole afterwards.
    assert srv.proc.poll() is None
    assert httpx.get(srv.url + "/ping", timeout=30).status_code == 200


def _model_path(path: str) -> dict[str, str] | None:
    if "{model_name}" not in path:
        return None
    fixed = {"model_name": "ppocr_rec"}
    if "{model_version}" in path:
        fixed["model_version"] = "1.0"
    return fixed


@pytest.mark.parametrize("method,path", INFERENCE_OPERATIONS)
def test_inference_api(
    srv: ServerProcess, documents: dict[str, Any], method: str, path: str
) -> None:
    _fuzz(srv, "inference", documents["inference"], method, path, _model_path(path))


@pytest.mark.parametrize("method,path", MANAGEMENT_OPERATIONS)
def test_management_api(
    srv: ServerProcess, documents: dict[str, Any], method: str, path: str
) -> None:
    fixed_paths = _model_path(path) if method == "GET" else None
    fixed_query = {"url": "no-such-archive.mar"} if (method, path) == ("POST", "/models") else None
    _fuzz(srv, "management", documents["management"], method, path, fixed_paths, fixed_query)


def test_documents_cover_every_operation(documents: dict[str, Any]) -> None:
    """The operations fuzzed above are exactly those the documents list."""
    for api, operations in (
        ("inference", INFERENCE_OPERATIONS),
        ("management", MANAGEMENT_OPERATIONS),
    ):
        listed = {
            (method.upper(), path)
            for path, item in documents[api]["paths"].items()
            for method in item
            if method in ("get", "put", "post", "delete", "options", "patch", "head")
        }
        assert listed == set(operations), api


def test_no_model_was_registered_and_no_worker_died(srv: ServerProcess) -> None:
    models = httpx.get(srv.management_url + "/models", timeout=30).json()["models"]
    assert sorted(m["modelName"] for m in models) == list(MODELS)
    assert _workers(srv) == PIDS_AT_START
    for key, count in sorted(SEEN.items()):
        print(*key, count)
