"""The OpenAPI 3 document of the inference API, true to the routes `inference.py` serves."""

from __future__ import annotations

from typing import Any

from ocrserve import __version__

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
                        "properties": {"text": {"type": "string"}, "score": {"type": "number"}},
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
            "/predictions/{model_name}": _predict(
                "Predictions entry point, default model version.", [_NAME]
            ),
            "/predictions/{model_name}/{model_version}": _predict(
                "Predictions entry point for a given model version.", [_NAME, _VERSION]
            ),
        },
    }
