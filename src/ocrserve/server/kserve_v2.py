"""The Open Inference Protocol (KServe v2) on the inference port, beside TorchServe's routes.

Health, server and model metadata, model readiness and inference, as
``kserve/open-inference-protocol``'s ``inference_rest.md`` defines them, with Triton's binary
tensor data extension. The tensors are read and written by `ocrserve.server.oip_tensors`; the
images go through the same checks and the same `Engine.infer` as ``/predictions``. Errors are
``{"error": "..."}`` (`ocrserve.server.responses.error_response_for`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ocrserve.errors import InvalidInput
from ocrserve.imaging import is_pdf
from ocrserve.server.engine import Engine, ServedModel
from ocrserve.server.inference import check_response_size, infer_images, read_body
from ocrserve.server.oip_tensors import (
    DOCUMENTS_UNSUPPORTED,
    INPUT,
    check_outputs,
    decompress,
    encode_response,
    parse_request,
    results_to_tensors,
    task_outputs,
)
from ocrserve.server.responses import NO_CACHE_HEADERS, json_response
from ocrserve.version import __version__

__all__ = ["EXTENSIONS", "kserve_v2_routes", "model_metadata"]

#: What ``GET /v2`` lists (Triton's name for the binary extension).
EXTENSIONS = ["binary_tensor_data"]
HEADER_LENGTH = "inference-header-content-length"


def model_metadata(engine: Engine, runtime: ServedModel) -> dict[str, object]:
    """``GET /v2/models/{m}``: name, versions, platform, and the tensors of its task."""
    spec = runtime.spec
    return {
        "name": spec.name,
        "versions": [rt.spec.version for rt in engine.versions(spec.name)],
        "platform": "ocrserve",
        "inputs": [INPUT.to_json()],
        "outputs": [t.to_json() for t in task_outputs(spec.task)],
    }


def server_ready(engine: Engine) -> bool:
    """Every model version has a ready worker and every configured model loaded (the spec:
    "all the models are ready"). A model scaled to 0 makes the server not ready."""
    return not engine.failures and all(
        rt.ready_workers > 0 for versions in engine.models.values() for rt in versions.values()
    )


def kserve_v2_routes(engine: Engine) -> list[Route]:
    settings = engine.settings

    def runtime(request: Request) -> ServedModel:
        return engine.get(
            request.path_params["model_name"], request.path_params.get("model_version")
        )

    async def metadata(request: Request) -> Response:
        return json_response({"name": "ocrserve", "version": __version__, "extensions": EXTENSIONS})

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        ok = server_ready(engine)
        return json_response({"ready": ok}, 200 if ok else 503)

    async def model(request: Request) -> Response:
        return json_response(model_metadata(engine, runtime(request)))

    async def model_ready(request: Request) -> Response:
        rt = runtime(request)
        ok = rt.ready_workers > 0
        return json_response({"name": rt.spec.name, "ready": ok}, 200 if ok else 503)

    async def infer(request: Request) -> Response:
        rt = runtime(request)  # 404 before reading a body for a model that is not there
        name, version = rt.spec.name, request.path_params.get("model_version")
        request.state.model, request.state.version = name, version
        body = await read_body(request, settings.max_request_size)
        encoding = request.headers.get("content-encoding")
        body = decompress(body, encoding, settings.max_request_size)
        parsed = parse_request(body, request.headers.get(HEADER_LENGTH))
        check_outputs(parsed, rt.spec.task)
        if any(is_pdf(image) for image in parsed.images):
            raise InvalidInput(DOCUMENTS_UNSUPPORTED)
        results = await infer_images(engine, request, name, rt.spec.version, parsed.images)
        tensors = results_to_tensors(rt.spec.task, results)
        content, header_length = encode_response(name, rt.spec.version, parsed, tensors)
        check_response_size(len(content), settings.max_response_size)
        if header_length is None:
            return Response(content, media_type="application/json", headers=NO_CACHE_HEADERS)
        headers = {**NO_CACHE_HEADERS, "Inference-Header-Content-Length": str(header_length)}
        return Response(content, media_type="application/octet-stream", headers=headers)

    routes = [
        Route("/v2", metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
    ]
    for base in ("/v2/models/{model_name}", "/v2/models/{model_name}/versions/{model_version}"):
        routes += [
            Route(base, model, methods=["GET"]),
            Route(f"{base}/ready", model_ready, methods=["GET"]),
            Route(f"{base}/infer", infer, methods=["POST"]),
        ]
    return routes
