"""``ocrserve.server.ray_app:build`` deployed as a KubeRay ``RayService`` deploys it: the
``serveConfigV2`` of deploy/kuberay/rayservice.yaml, sent by ``serve deploy`` to the Serve REST
API of a Ray dashboard (the call KubeRay makes), on a one-node cluster of its own on loopback;
then real HTTP through Serve's proxy. No Kubernetes here: the manifest's cluster part is only
parsed."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ocrserve.archives.bundled import build_bundled_archive
from tests.conftest import DEMO, REPO, free_port
from tests.ray_cluster import RAY_SKIP_REASON, REPLICA_CPUS, RayCluster, ray_installed

pytestmark = pytest.mark.slow

MANIFEST = REPO / "deploy" / "kuberay" / "rayservice.yaml"
REC_IMG = (DEMO / "demo_text_recog.jpg").read_bytes()
KEY = "ocrserve-rayservice-test-key-0123456789"


def _manifest() -> tuple[dict[str, Any], dict[str, Any]]:
    """The RayService, and its serveConfigV2 (a YAML document in a string)."""
    import yaml

    service = yaml.safe_load(MANIFEST.read_text())
    return service, yaml.safe_load(service["spec"]["serveConfigV2"])


def test_manifest_is_a_rayservice_of_the_builder() -> None:
    service, config = _manifest()
    assert (service["apiVersion"], service["kind"]) == ("ray.io/v1", "RayService")
    assert service["spec"]["rayClusterConfig"]["rayVersion"] == "2.60.0"
    (app,) = config["applications"]
    assert app["import_path"] == "ocrserve.server.ray_app:build" and app["route_prefix"] == "/"


class Service:
    def __init__(self, cluster: RayCluster, url: str) -> None:
        self.cluster, self.url = cluster, url

    def status(self) -> dict[str, Any]:
        """``serve status``: what KubeRay reads back (applications, deployments, replicas)."""
        import yaml

        out = subprocess.run(
            [str(Path(sys.executable).with_name("serve")), "status", "-a",
             self.cluster.dashboard_url],
            env=self.cluster.env, capture_output=True, timeout=60, check=True,
        )  # fmt: skip
        return dict(yaml.safe_load(out.stdout))


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    import yaml

    if not ray_installed():
        pytest.skip(RAY_SKIP_REASON)
    store = tmp_path_factory.mktemp("model-store")
    build_bundled_archive("ppocr_rec", store)
    _, config = _manifest()
    (app,) = config["applications"]
    # The pods' /model-store is a folder here; replicas reserve what 2 cores allow.
    app["args"].update(model_store=str(store), ray_replica_cpus=float(REPLICA_CPUS))
    port = free_port()
    config["http_options"] = {"host": "127.0.0.1", "port": port}
    path = tmp_path_factory.mktemp("serve") / "serve.yaml"
    path.write_text(yaml.safe_dump(config))
    cluster = RayCluster(nodes=1, dashboard=True, env={"OCRSERVE_INFERENCE_KEY": KEY})
    try:
        deploy = [str(Path(sys.executable).with_name("serve")), "deploy", str(path),
                  "-a", cluster.dashboard_url]  # fmt: skip
        for _ in range(30):  # the dashboard's Serve API comes up after the node
            done = subprocess.run(deploy, env=cluster.env, capture_output=True, timeout=120)
            if done.returncode == 0:
                break
            time.sleep(2)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        service = Service(cluster, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 180
        while True:
            status = service.status()["applications"]["ocrserve"]
            if status["status"] == "RUNNING":
                break
            assert status["status"] != "DEPLOY_FAILED", status
            assert time.monotonic() < deadline, status
            time.sleep(2)
        yield service
    finally:
        cluster.stop()


def test_serve_config_runs_ingress_and_one_deployment_per_model(service: Service) -> None:
    deployments = service.status()["applications"]["ocrserve"]["deployments"]
    assert set(deployments) == {"OcrIngress", "OcrReplica.ppocr_rec.1.0"}
    # models JSON minWorkers=maxWorkers=2: two replicas.
    assert deployments["OcrReplica.ppocr_rec.1.0"]["replica_states"] == {"RUNNING": 2}


def test_inference_routes_through_serves_proxy(service: Service) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    deadline = time.monotonic() + 30
    while (ping := httpx.get(f"{service.url}/ping", timeout=10)).status_code != 200:
        assert time.monotonic() < deadline, ping.text  # the ingress's first look at replicas
        time.sleep(0.5)
    assert ping.json() == {"status": "Healthy"}
    url = f"{service.url}/predictions/ppocr_rec"
    refused = httpx.post(url, content=REC_IMG, timeout=60)
    assert refused.status_code == 401 and set(refused.json()) == {"code", "type", "message"}
    resp = httpx.post(url, content=REC_IMG, headers=auth, timeout=60)
    assert resp.status_code == 200 and resp.json()["text"] == "serving", resp.text
    missing = httpx.post(f"{service.url}/predictions/nosuch", content=REC_IMG, headers=auth)
    assert missing.status_code == 404
    assert missing.json()["type"] == "ModelNotFoundException"
    ready = httpx.get(f"{service.url}/v2/models/ppocr_rec/ready", headers=auth, timeout=10)
    assert ready.status_code == 200
