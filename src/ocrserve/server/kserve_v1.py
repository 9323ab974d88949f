"""KServe's v1 protocol on the inference port, beside TorchServe's routes.

``GET /v1/models``, ``GET /v1/models/{m}`` (readiness) and ``POST /v1/models/{m}:predict`` with
``{"instances": [{"b64": "<image>"}, ...]}``, answered ``{"predictions": [...]}``: one
TorchServe answer per instance (`ocrserve.predictor`'s forms). Images go through the same
checks and the same `Engine.infer` as ``/predictions``; errors are ``{"error": "..."}``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ocrserve.errors import InvalidInput, ServiceUnavailable
from ocrserve.imaging import decode_base64
from ocrserve.server.engine import Engine
from ocrserve.server.inference import check_response_size, infer_images, read_body
from ocrserve.server.responses import json_response

__all__ = ["instance_images", "kserve_v1_routes"]

#: The keys an instance may carry its base64 image under ("b64": KServe's and TF Serving's
#: binary convention; "data": TorchServe's KServe wrapper).
INSTANCE_KEYS = ("b64", "data")


def _image(instance: Any, index: int) -> bytes:
    value = instance
    if isinstance(instance, dict):
        value = next((instance[k] for k in INSTANCE_KEYS if k in instance), None)
    if not isinstance(value, str) or not value:
        raise InvalidInput(
            f'Instance {index} must be {{"b64": "<base64 image>"}} (or a base64 string).'
        )
    try:
        return decode_base64(value.encode())
    except InvalidInput as exc:
        raise InvalidInput(f"Instance {index}: {exc.message}") from None


def instance_images(body: bytes) -> list[bytes]:
    """The images of a ``:predict`` body, ``{"instances": [...]}``."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidInput(f"Predict request is not valid JSON: {exc}") from None
    instances = doc.get("instances") if isinstance(doc, dict) else None
    if not isinstance(instances, list) or not instances:
        raise InvalidInput('Predict request must be {"instances": [{"b64": "<base64 image>"}]}.')
    return [_image(item, i) for i, item in enumerate(instances)]


def kserve_v1_routes(engine: Engine) -> list[Route]:
    settings = engine.settings

    async def models(request: Request) -> Response:
        return json_response({"models": sorted(engine.models)})

    async def model_ready(request: Request) -> Response:
        name = request.path_params["model_name"]
        if engine.get(name).ready_workers == 0:  # KServe's ModelNotReady
            raise ServiceUnavailable(f"Model with name {name} is not ready.")
        return json_response({"name": name, "ready": True})

    async def predict(request: Request) -> Response:
        name = request.path_params["model_name"]
        engine.get(name)  # 404 before reading a body for a model that is not there
        request.state.model, request.state.version = name, None
        images = instance_images(await read_body(request, settings.max_request_size))
        predictions = await infer_images(engine, request, name, None, images)
        response = json_response({"predictions": predictions}, trailing_newline=False)
        check_response_size(len(response.body), settings.max_response_size)
        return response

    return [
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_name}", model_ready, methods=["GET"]),
        Route("/v1/models/{model_name}:predict", predict, methods=["POST"]),
    ]
