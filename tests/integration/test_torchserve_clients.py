"""Existing TorchServe clients, unchanged, against ocrserve.

The calls are those of TorchServe's documentation (``docs/management_api.md``,
``docs/inference_api.md``: ``curl`` examples written with ``requests``) and of the
``torchserve-client`` package (PyPI, REST client), which sends its register and scale
parameters as a JSON body.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ocrserve.archives.bundled import build_bundled_archive
from tests.conftest import DEMO, ServerProcess, running

requests = pytest.importorskip("requests", reason="the TorchServe docs examples use requests")

REC_PATH = DEMO / "demo_text_recog.jpg"
REC_TEXT = (DEMO / "demo_text_recog.txt").read_text().strip()


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A model store and no model loaded: clients register what they serve."""
    tmp = tmp_path_factory.mktemp("clients")
    build_bundled_archive("ppocr_rec", tmp / "model-store")
    server = ServerProcess(tmp, "--model-store", str(tmp / "model-store"), "--enable-model-api")
    yield from running(server)


def _workers(mgmt: str, model: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        workers = requests.get(f"{mgmt}/models/{model}").json()[0]["workers"]
        if len(workers) == count and all(w["status"] == "READY" for w in workers):
            return list(workers)
        assert time.monotonic() < deadline, workers
        time.sleep(0.05)


def test_requests_as_in_torchserves_docs(srv: ServerProcess) -> None:
    inference, management = srv.url, srv.management_url

    res = requests.get(f"{inference}/ping")
    assert res.status_code == 200 and res.json() == {"status": "Healthy"}

    # Register without workers, then remove it (management_api.md, "Register a model").
    res = requests.post(f"{management}/models?url=ppocr_rec.mar")
    assert res.status_code == 200
    assert "registered with 0 initial workers" in res.json()["status"]
    assert requests.delete(f"{management}/models/ppocr_rec").status_code == 200

    res = requests.post(f"{management}/models?url=ppocr_rec.mar&initial_workers=1&synchronous=true")
    assert res.status_code == 200
    assert res.json() == {
        "status": 'Model "ppocr_rec" Version: 1.0 registered with 1 initial workers'
    }
    # The same call with a params dict (requests sends synchronous=True).
    res = requests.post(
        f"{management}/models",
        params={"url": "ppocr_rec.mar", "model_name": "words", "initial_workers": 1,
                "synchronous": True},
    )  # fmt: skip
    assert res.status_code == 200, res.text

    # Scale workers: asynchronous by default, then synchronous.
    res = requests.put(f"{management}/models/ppocr_rec?min_worker=2")
    assert res.status_code == 202 and res.json() == {"status": "Processing worker updates..."}
    assert len(_workers(management, "ppocr_rec", 2)) == 2
    res = requests.put(f"{management}/models/ppocr_rec?min_worker=1&synchronous=true")
    assert res.status_code == 200
    assert res.json() == {"status": "Workers scaled to 1 for model: ppocr_rec"}

    # Predict: the raw file as the body (curl -T / --data-binary), POST and PUT.
    with open(REC_PATH, "rb") as image:
        res = requests.post(f"{inference}/predictions/ppocr_rec", data=image)
    assert res.status_code == 200 and res.json()["text"] == REC_TEXT
    with open(REC_PATH, "rb") as image:
        res = requests.put(f"{inference}/predictions/ppocr_rec/1.0", data=image)
    assert res.status_code == 200 and res.json()["text"] == REC_TEXT
    # Multipart field "data" (curl -F "data=@kitten.jpg").
    with open(REC_PATH, "rb") as image:
        res = requests.post(f"{inference}/predictions/words", files={"data": image})
    assert res.status_code == 200 and res.json()["text"] == REC_TEXT
    # raw bytes from the examples' read() helpers
    res = requests.post(f"{inference}/predictions/ppocr_rec", data=REC_PATH.read_bytes())
    assert res.status_code == 200 and res.json()["text"] == REC_TEXT

    # Describe and list.
    res = requests.get(f"{management}/models/ppocr_rec")
    assert res.status_code == 200
    (desc,) = res.json()
    assert desc["modelName"] == "ppocr_rec" and desc["modelVersion"] == "1.0"
    assert desc["minWorkers"] == 1 and len(desc["workers"]) == 1
    res = requests.get(f"{management}/models?limit=1&next_page_token=1")
    assert res.json() == {"models": [{"modelName": "words", "modelUrl": "ppocr_rec.mar"}]}
    res = requests.put(f"{management}/models/ppocr_rec/1.0/set-default")
    assert res.status_code == 200

    # Unregister (management_api.md: DELETE /models/{name}/{version}).
    for name in ("ppocr_rec", "words"):
        res = requests.delete(f"{management}/models/{name}/1.0")
        assert res.status_code == 200 and res.json() == {"status": f'Model "{name}" unregistered'}
    res = requests.post(f"{inference}/predictions/ppocr_rec", data=REC_PATH.read_bytes())
    assert res.status_code == 404 and res.json()["type"] == "ModelNotFoundException"
    assert requests.get(f"{management}/models").json() == {"models": []}


# -- torchserve-client (PyPI) -----------------------------------------------------------------


@pytest.fixture()
def ts_client(srv: ServerProcess) -> Any:
    tsc = pytest.importorskip("torchserve_client", reason="pip install torchserve-client")
    client = tsc.TorchServeClientREST(
        base_url="http://127.0.0.1",
        management_port=int(srv.management_url.rsplit(":", 1)[1]),
        inference_port=int(srv.url.rsplit(":", 1)[1]),
    )
    return client


def test_torchserve_client_registers(srv: ServerProcess, ts_client: Any) -> None:
    """register_model sends its parameters as a JSON body, which TorchServe reads
    (transcript case 38)."""
    try:
        res = ts_client.management.register_model(
            "ppocr_rec.mar", model_name="tsc_json", initial_workers=1, synchronous=True
        )
        assert res == {"status": 'Model "tsc_json" Version: 1.0 registered with 1 initial workers'}
        (desc,) = ts_client.management.describe_model("tsc_json")
        assert len(desc["workers"]) == 1
    finally:
        requests.delete(f"{srv.management_url}/models/tsc_json")


def test_torchserve_client_calls(srv: ServerProcess, ts_client: Any) -> None:
    res = requests.post(
        f"{srv.management_url}/models?url=ppocr_rec.mar&model_name=tsc&initial_workers=1"
        "&synchronous=true"
    )
    assert res.status_code == 200
    try:
        mgmt, infer = ts_client.management, ts_client.inference
        assert infer.health_check() == {"status": "Healthy"}
        assert infer.api_description()["openapi"].startswith("3.")
        assert mgmt.api_description()["openapi"].startswith("3.")
        assert mgmt.list_models() == {"models": [{"modelName": "tsc", "modelUrl": "ppocr_rec.mar"}]}
        (desc,) = mgmt.describe_model("tsc")
        assert desc["modelName"] == "tsc" and len(desc["workers"]) == 1
        (desc,) = mgmt.describe_model("tsc", version="1.0")
        assert desc["modelVersion"] == "1.0"
        # scale_workers sends a JSON body; TorchServe reads scale parameters from the query
        # only, so this is min_worker=1, asynchronous.
        assert mgmt.scale_workers("tsc", min_worker=1) == {"status": "Processing worker updates..."}
        with open(REC_PATH, "rb") as image:
            assert infer.prediction("tsc", {"data": image})["text"] == REC_TEXT
        with open(REC_PATH, "rb") as image:
            assert infer.prediction("tsc", {"data": image}, version="1.0")["text"] == REC_TEXT
        res = mgmt.set_default_version("tsc", "1.0")
        assert res == {"status": 'Default version successfully updated for model "tsc" to "1.0"'}
        assert mgmt.unregister_model("tsc") == {"status": 'Model "tsc" unregistered'}
        with pytest.raises(requests.HTTPError) as info:
            mgmt.describe_model("tsc")
        assert info.value.response.status_code == 404
    finally:
        requests.delete(f"{srv.management_url}/models/tsc")


def test_no_client_left_a_model_behind(srv: ServerProcess) -> None:
    assert requests.get(f"{srv.management_url}/models").json() == {"models": []}
    assert not list(Path(srv.cwd).glob("key_file.json"))  # started with --disable-token-auth
