"""The OpenAPI 3 document of the inference API, true to the routes `inference.py` serves."""

from __future__ import annotations

from typing import Any

from ocrserve.version import __version__

__all__ = ["inference_openapi"]

_ERROR = {
    "type": "object",
    "required": ["code", "type", "message"],
    "properties": {
        "code": {"type": "integer", "description": "HTTP status code."},
        "type": {"type": "string", "description": "TorchServe exception name."},
        "message": {"type": "string", "description": "What went wrong."},
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


_RESULT = {
    "description": "Detection: boundary_result; recognition: text and score; end-to-end: result.",
    "content": {
        "application/json": {
            "schema": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["boundary_result"],
                        "properties": {
                            "boundary_result": {
                                "type": "array",
                                "description": "[x1, y1, ..., xn, yn, score], clockwise.",
                                "items": {"type": "array", "items": {"type": "number"}},
                            }
                        },
                    },
                    {
                        "type": "object",
                        "required": ["text", "score"],
                        "properties": {
                            "text": {"type": "string"},
                            # NRTR answers per-character scores, as MMOCR 0.6.3 did.
                            "score": {
                                "oneOf": [
                                    {"type": "number"},
                                    {"type": "array", "items": {"type": "number"}},
                                ]
                            },
                        },
                    },
                    {
                        "type": "object",
                        "required": ["result"],
                        "properties": {
                            "result": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "box": {"type": "array", "items": {"type": "number"}},
                                        "box_score": {"type": "number"},
                                        "text": {"type": "string"},
                                        "text_score": {"type": "number"},
                                    },
                                },
                            }
                        },
                    },
                ]
            }
        }
    },
}

_BODY = {
    "description": "An image: raw bytes, multipart field 'data' or 'file', base64 text, or JSON "
    '{"data": "<base64>"}.',
    "required": True,
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"data": {"type": "string", "format": "binary"}},
            }
        },
        "application/json": {
            "schema": {"type": "object", "properties": {"data": {"type": "string"}}}
        },
    },
}

_NAME = {
    "in": "path",
    "name": "model_name",
    "required": True,
    "schema": {"type": "string"},
    "description": "Name of model.",
}
_VERSION = {
    "in": "path",
    "name": "model_version",
    "required": True,
    "schema": {"type": "string"},
    "description": "Version of model.",
}


_SERVED_MODELS = {
    "type": "object",
    "required": ["models"],
    "properties": {
        "models": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["modelName", "modelVersion", "task", "versions"],
                "properties": {
                    "modelName": {"type": "string"},
                    "modelVersion": {"type": "string", "description": "The default version."},
                    "task": {"type": "string", "enum": ["textdet", "textrecog", "e2e"]},
                    "versions": {"type": "array", "items": {"type": "string"}},
                },
            },
        }
    },
}


def _predict(description: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    op = {
        "description": description,
        "parameters": params,
        "requestBody": _BODY,
        "responses": {
            "200": _RESULT,
            "400": _err("Empty, undecodable or invalid input"),
            "404": _err("Model not found or Model Version not found"),
            "413": _err("Body over max_request_size or image over max_image_pixels"),
            "500": _err("Internal Server Error"),
            "503": _err("No worker is available to serve request, or the job queue is full"),
            "504": _err("The model did not answer within default_response_timeout"),
        },
    }
    return {
        "post": {**op, "operationId": "predictions" + ("Version" if len(params) > 1 else "")},
        "put": {**op, "operationId": "putPredictions" + ("Version" if len(params) > 1 else "")},
    }


def inference_openapi() -> dict[str, Any]:
    describe = {
        "description": "Get openapi description.",
        "responses": {
            "200": {
                "description": "An OpenAPI 3 descriptor",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }
    health = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["Healthy", "Unhealthy"]}},
    }
    return {
        "openapi": "3.0.1",
        "info": {
            "title": "ocrserve inference API",
            "description": "TorchServe-compatible inference API for OCR models.",
            "version": __version__,
        },
        "paths": {
            "/": {"options": {**describe, "operationId": "apiDescription"}},
            "/api-description": {"get": {**describe, "operationId": "getApiDescription"}},
            "/ping": {
                "get": {
                    "operationId": "ping",
                    "description": "Healthy when every configured model has a live worker.",
                    "responses": {
                        "200": {
                            "description": "Healthy",
                            "content": {"application/json": {"schema": health}},
                        },
                        "500": {
                            "description": "Unhealthy",
                            "content": {"application/json": {"schema": health}},
                        },
                    },
                }
            },
            "/ocrserve/models": {
                "get": {
                    "operationId": "listServedModels",
                    "description": "ocrserve's own: the served models, each with its default "
                    "version, its task and all its versions.",
                    "responses": {
                        "200": {
                            "description": "The served models, by name",
                            "content": {"application/json": {"schema": _SERVED_MODELS}},
                        }
                    },
                }
            },
            "/predictions/{model_name}": _predict(
                "Predictions entry point, default model version.", [_NAME]
            ),
            "/predictions/{model_name}/{model_version}": _predict(
                "Predictions entry point for a given model version.", [_NAME, _VERSION]
            ),
        },
    }


def _q(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"in": "query", "name": name, "required": False, "description": description,
            "schema": {"type": kind}}  # fmt: skip


def _status_ok(description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_DESCRIBE = {
    "description": "Describe: one object per version.",
    "content": {"application/json": {"schema": {"type": "array", "items": {
        "type": "object",
        "required": ["modelName", "modelVersion", "modelUrl", "minWorkers", "maxWorkers",
                     "workers", "jobQueueStatus"],
        "properties": {
            "modelName": {"type": "string"}, "modelVersion": {"type": "string"},
            "modelUrl": {"type": "string"}, "runtime": {"type": "string"},
            "minWorkers": {"type": "integer"}, "maxWorkers": {"type": "integer"},
            "batchSize": {"type": "integer"}, "maxBatchDelay": {"type": "integer"},
            "responseTimeout": {"type": "integer"}, "startupTimeout": {"type": "integer"},
            "loadedAtStartup": {"type": "boolean"}, "status": {"type": "string"},
            "task": {"type": "string"}, "weights": {"type": "string"},
            "workers": {"type": "array", "items": {"type": "object", "properties": {
                "id": {"type": "string"}, "startTime": {"type": "string"},
                "status": {"type": "string"}, "memoryUsage": {"type": "integer"},
                "pid": {"type": "integer"}}}},
            "jobQueueStatus": {"type": "object", "properties": {
                "remainingCapacity": {"type": "integer"}, "pendingRequests": {"type": "integer"}}},
        },
    }}}},
}  # fmt: skip


def _errors(*codes: int) -> dict[str, Any]:
    text = {400: "Bad parameters", 401: "Missing or wrong token", 403: "Forbidden",
            404: "Model, version or archive not found", 405: "Model API disabled",
            409: "Version already registered", 500: "Workers failed to start"}  # fmt: skip
    return {str(c): _err(text[c]) for c in codes}


def management_openapi() -> dict[str, Any]:
    """The OpenAPI 3 document of the management API, true to `management.py`'s routes."""
    scale_params = [
        _q("min_worker", "Workers to run (default 1).", "integer"),
        _q("max_worker", "Maximum workers (default min_worker).", "integer"),
        _q("synchronous", "Wait until the workers are ready.", "boolean"),
    ]
    describe = {"description": "Describe a model.", "responses": {"200": _DESCRIBE, **_errors(404)}}
    scale = {"description": "Scale a model's workers.", "parameters": scale_params,
             "responses": {"200": _status_ok("Scaled"), "202": _status_ok("Accepted"),
                           **_errors(400, 404, 500)}}  # fmt: skip
    unregister = {
        "description": "Unregister a model version.",
        "responses": {"200": _status_ok("Unregistered"), **_errors(403, 404, 405)},
    }
    name = dict(_NAME)
    version = dict(_VERSION)
    doc_json = {"application/json": {"schema": {"type": "object"}}}
    doc_op = {
        "description": "Get openapi description.",
        "responses": {"200": {"description": "An OpenAPI 3 descriptor", "content": doc_json}},
    }
    return {
        "openapi": "3.0.1",
        "info": {"title": "ocrserve management API",
                 "description": "TorchServe-compatible management API.", "version": __version__},
        "paths": {
            "/": {"options": {**doc_op, "operationId": "apiDescription"}},
            "/api-description": {"get": {**doc_op, "operationId": "getApiDescription"}},
            "/models": {
                "get": {"operationId": "listModels", "description": "List registered models.",
                        "parameters": [_q("limit", "Page size (default 100).", "integer"),
                                       _q("next_page_token", "Offset token from a previous page.")],
                        "responses": {"200": {"description": "Models", "content": {
                            "application/json": {"schema": {"type": "object", "properties": {
                                "nextPageToken": {"type": "string"},
                                "models": {"type": "array", "items": {"type": "object"}}}}}}}}},
                "post": {"operationId": "registerModel", "description": "Register a model archive.",
                         "parameters": [
                             {**_q("url", "Archive in the model store, or an allowed http(s) URL."),
                              "required": True},
                             _q("model_name", "Name to register under."),
                             _q("initial_workers", "Workers to start (default 0).", "integer"),
                             _q("synchronous", "Wait for the workers.", "boolean"),
                             _q("batch_size", "Largest batch.", "integer"),
                             _q("max_batch_delay", "Batch wait in ms.", "integer"),
                             _q("response_timeout", "Seconds per batch.", "integer"),
                             _q("startup_timeout", "Seconds to load.", "integer")],
                         "responses": {"200": _status_ok("Registered"),
                                       "202": _status_ok("Accepted"),
                                       **_errors(400, 404, 405, 409, 500)}},
            },
            "/models/{model_name}": {
                "get": {**describe, "operationId": "describeModel", "parameters": [name]},
                "put": {**scale, "operationId": "setAutoScale",
                        "parameters": [name, *scale_params]},
                "delete": {**unregister, "operationId": "unregisterModel", "parameters": [name]},
            },
            "/models/{model_name}/{model_version}": {
                "get": {**describe, "operationId": "describeModelVersion",
                        "parameters": [name, version]},
                "put": {**scale, "operationId": "setAutoScaleVersion",
                        "parameters": [name, version, *scale_params]},
                "delete": {**unregister, "operationId": "unregisterModelVersion",
                           "parameters": [name, version]},
            },
            "/models/{model_name}/{model_version}/set-default": {
                "put": {"operationId": "setDefault", "description": "Make a version the default.",
                        "parameters": [name, version],
                        "responses": {"200": _status_ok("Default set"), **_errors(404)}},
            },
        },
    }  # fmt: skip
