"""The OpenAPI 3 documents, true to the routes `inference.py`, `kserve_v2.py`, `kserve_v1.py`
and `management.py` serve."""

from __future__ import annotations

from typing import Any

from ocrserve.options import OPTIONS, task_schema
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
                            "char_scores": {"type": "array", "items": {"type": "number"}},
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
                                        "char_scores": {
                                            "type": "array",
                                            "items": {"type": "number"},
                                        },
                                    },
                                },
                            }
                        },
                    },
                    {
                        "type": "object",
                        "required": ["pages"],
                        "description": "A PDF or multi-page TIFF: each page's answer, in order.",
                        "properties": {
                            "pages": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["page", "width", "height"],
                                    "properties": {
                                        "page": {"type": "integer", "minimum": 1},
                                        "width": {"type": "integer"},
                                        "height": {"type": "integer"},
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

#: With ``Accept: application/x-ndjson``: a document's pages, one JSON object a line, as read.
_RESULT_CONTENT: dict[str, Any] = _RESULT["content"]  # type: ignore[assignment]
_RESULT_CONTENT["application/x-ndjson"] = {
    "schema": {
        "type": "string",
        "description": "One JSON object per line: a PDF's or multi-page TIFF's pages in order "
        '({"page", "width", "height", "time_ms", "done_at", ...the answer or "error"}), each '
        "sent as soon as it is read (X-Page-Count says how many); an image's answer as one "
        'line; a failure after the first line as a last line {"error": {...}}.',
    }
}
#: The ``format`` option's answers (`ocrserve.documents.outputs`).
for _media, _what in (
    ("text/plain", "format=text: the lines in reading order, a form feed between pages."),
    ("text/html", "format=hocr: hOCR 1.2 (XHTML)."),
    ("application/alto+xml", "format=alto: ALTO 4 XML."),
    ("application/pdf", "format=pdf: the PDF sent, with an invisible text layer."),
):
    _RESULT_CONTENT[_media] = {"schema": {"type": "string", "description": _what}}

_TASKS = ("textdet", "textrecog", "e2e")


def _option_params() -> list[dict[str, Any]]:
    """Each request option as a query parameter (`ocrserve.options`)."""
    params = []
    for option in OPTIONS:
        schema = option.schema()
        tasks = ", ".join(t for t in _TASKS if t in option.tasks)
        params.append({
            "in": "query",
            "name": option.name,
            "required": False,
            "schema": {k: v for k, v in schema.items() if k != "description"},
            "description": f"{schema['description']} Models: {tasks}. Also accepted as a JSON "
            "field beside data or a multipart field; an option the model's task does not take, "
            "or one its archive pins to another value, is a 400.",
        })  # fmt: skip
    return params


_OPTION_PROPERTIES = {o.name: o.schema() for o in OPTIONS}

_BODY = {
    "description": "An image or a PDF: raw bytes, multipart field 'data' or 'file', base64 "
    'text, or JSON {"data": "<base64>"}.',
    "required": True,
    "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        "image/*": {"schema": {"type": "string", "format": "binary"}},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "data": {"type": "string", "format": "binary"},
                    **_OPTION_PROPERTIES,
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"data": {"type": "string"}, **_OPTION_PROPERTIES},
            }
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
                "required": ["modelName", "modelVersion", "task", "versions", "options"],
                "properties": {
                    "modelName": {"type": "string"},
                    "modelVersion": {"type": "string", "description": "The default version."},
                    "task": {"type": "string", "enum": ["textdet", "textrecog", "e2e"]},
                    "versions": {"type": "array", "items": {"type": "string"}},
                    "options": {
                        "type": "object",
                        "description": "The JSON schema of the default version's request "
                        "options; an option its archive pins has its one value as an enum.",
                    },
                },
            },
        }
    },
}


def _predict(description: str, params: list[dict[str, Any]]) -> dict[str, Any]:
    op = {
        "description": description,
        "parameters": [*params, *_option_params()],
        "requestBody": _BODY,
        "responses": {
            "200": _RESULT,
            "400": _err("Empty, undecodable or invalid input, or an invalid option"),
            "404": _err("Model not found or Model Version not found"),
            "413": _err(
                "Body over max_request_size, image or PDF page over max_image_pixels, or PDF "
                "over max_pdf_pages"
            ),
            "500": _err("Internal Server Error"),
            "503": _err("No worker is available to serve request, or the job queue is full"),
            "504": _err(
                "The model did not answer within its response timeout (for a document: no "
                "page could be read; a page that times out is an error in its entry)"
            ),
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
            **_kserve_paths(),
        },
        "components": {
            "schemas": {f"{task}Options": task_schema(task) for task in _TASKS},
        },
    }


# -- KServe v2 (Open Inference Protocol) and v1 ------------------------------------------------

_KS_TEXT = {
    400: "Malformed request or input",
    404: "Model or version not found",
    413: "Body over max_request_size or image over max_image_pixels",
    500: "Internal Server Error",
    503: "The model has no worker, its queue is full, or it failed to load",
    504: "The model did not answer within default_response_timeout",
}
_STRING: dict[str, Any] = {"type": "string"}
_BOOL: dict[str, Any] = {"type": "boolean"}
_BINARY: dict[str, Any] = {"type": "string", "format": "binary"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def _ks_json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ks_op(
    op_id: str,
    description: str,
    params: list[dict[str, Any]],
    ok: dict[str, Any],
    *errors: int,
    **extra: Any,
) -> dict[str, Any]:
    """A KServe operation: its 200 answer and ``{"error": "..."}`` for ``errors``."""
    error = _obj(["error"], error=_STRING)
    responses = {"200": ok, **{str(c): _ks_json(_KS_TEXT[c], error) for c in errors}}
    return {
        "operationId": op_id,
        "description": description,
        "parameters": params,
        "responses": responses,
        **extra,
    }


def _kserve_paths() -> dict[str, Any]:
    tensor = _obj(["name", "datatype", "shape"], name=_STRING, datatype=_STRING,
                  shape=_array({"type": "integer"}))  # fmt: skip
    metadata = _obj(["name", "platform", "inputs", "outputs"], name=_STRING,
                    versions=_array(_STRING), platform=_STRING, inputs=_array(tensor),
                    outputs=_array(tensor))  # fmt: skip
    ready = _obj(["name", "ready"], name=_STRING, ready=_BOOL)
    data_tensor = _obj(["name", "datatype", "shape"], **tensor["properties"],
                       parameters={"type": "object"}, data={"type": "array"})  # fmt: skip
    infer_request = _obj(["inputs"], id=_STRING, parameters={"type": "object"},
                         inputs=_array(data_tensor),
                         outputs=_array(_obj(["name"], name=_STRING,
                                             parameters={"type": "object"})))  # fmt: skip
    infer_response = _obj(["model_name", "outputs"], model_name=_STRING, model_version=_STRING,
                          id=_STRING, outputs=_array(data_tensor))  # fmt: skip
    header = {
        "in": "header",
        "name": "Inference-Header-Content-Length",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
        "description": "Binary tensor data extension: the bytes of JSON before the tensors.",
    }
    infer_ok = {
        "description": "Output tensors: JSON, or JSON then binary tensors (its length in the "
        "Inference-Header-Content-Length header)",
        "content": {
            "application/json": {"schema": infer_response},
            "application/octet-stream": {"schema": _BINARY},
        },
    }
    infer_body = {
        "required": True,
        "content": {
            "application/json": {"schema": infer_request},
            "application/octet-stream": {"schema": _BINARY},
        },
    }
    server_ready = _ks_op(
        "serverReady", "Ready when every model has a ready worker (no key needed).", [],
        _ks_json("Ready", _obj(["ready"], ready=_BOOL)),
    )  # fmt: skip
    server_ready["responses"]["503"] = _ks_json("Not ready", _obj(["ready"], ready=_BOOL))
    live = _ks_json("Live", _obj(["live"], live=_BOOL))
    paths: dict[str, Any] = {
        "/v2": {"get": _ks_op("serverMetadata", "Server name, version and extensions.", [],
                              _ks_json("Server metadata", {"type": "object"}))},
        "/v2/health/live": {"get": _ks_op("serverLive", "Live (no key needed).", [], live)},
        "/v2/health/ready": {"get": server_ready},
    }  # fmt: skip
    for suffix, params, tag in (
        ("", [_NAME], ""),
        ("/versions/{model_version}", [_NAME, _VERSION], "Version"),
    ):
        base = "/v2/models/{model_name}" + suffix
        paths[base] = {"get": _ks_op(f"modelMetadata{tag}", "Model metadata: its tensors.",
                                     params, _ks_json("Metadata", metadata), 404, 503)}  # fmt: skip
        paths[base + "/ready"] = {"get": _ks_op(
            f"modelReady{tag}", "Ready when the model has a ready worker.", params,
            _ks_json("Ready", ready), 404, 503)}  # fmt: skip
        paths[base + "/infer"] = {"post": _ks_op(
            f"modelInfer{tag}", "Inference: input 'image', BYTES [B] (encoded images).",
            [*params, header], infer_ok, 400, 404, 413, 500, 503, 504,
            requestBody=infer_body)}  # fmt: skip
    answer = _RESULT["content"]["application/json"]["schema"]  # type: ignore[index]
    instances = _obj(
        ["instances"], instances=_array({"type": "object", "properties": {"b64": _STRING}})
    )
    predict_body = {"required": True, "content": {"application/json": {"schema": instances}}}
    paths["/v1/models"] = {"get": _ks_op(
        "v1ListModels", "Names of the models.", [],
        _ks_json("Models", _obj(["models"], models=_array(_STRING))))}  # fmt: skip
    paths["/v1/models/{model_name}"] = {"get": _ks_op(
        "v1ModelReady", "Ready when the model has a ready worker.", [_NAME],
        _ks_json("Ready", ready), 404, 503)}  # fmt: skip
    paths["/v1/models/{model_name}:predict"] = {"post": _ks_op(
        "v1Predict", "Predict: one TorchServe answer per instance.", [_NAME],
        _ks_json("Predictions", _obj(["predictions"], predictions=_array(answer))),
        400, 404, 413, 500, 503, 504, requestBody=predict_body)}  # fmt: skip
    return paths


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
            "pinnedOptions": {"type": "object", "description": "Request options the archive "
                              "pins (ocrserve.options): requests may not change them."},
            "quantization": {"type": "object", "description": "An int8 archive's measurement "
                             "against FP32 (ocrserve archive --quantize int8); absent for FP32."},
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
