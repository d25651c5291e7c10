"""The HTTP edge shared by the prediction functions: Flask request in, Flask response out.

Routes (each function also answers under /<function name>, the path of its
cloudfunctions.net URL): GET card, POST predict (JSON or CSV), OPTIONS preflight.
Every failure leaves as JSON via one handler; nothing below this module sees Flask.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from shared import codecs
from shared import settings as settings_module
from shared.errors import (
    InvalidInput,
    MarketcastError,
    MethodNotAllowed,
    ModelUnavailable,
    NotFound,
    OriginNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from shared.inference import json_predictions, options_from_query, parse_options, predict
from shared.logs import log, trace_fields
from shared.model_card import model_card
from shared.model_store import ModelStore, open_backend
from shared.preprocessing import validate
from shared.settings import Settings

ALLOWED_METHODS = ("GET", "HEAD", "POST", "OPTIONS")
CORS_ALLOWED_HEADERS = "Content-Type, Authorization, X-Cloud-Trace-Context"
CORS_EXPOSED_HEADERS = "X-Model-Name, X-Model-Version, Retry-After"
READ_CHUNK_BYTES = 64 * 1024


@dataclass
class _Runtime:
    settings: Settings
    store: ModelStore


@dataclass
class _Outcome:
    """What one request did, for its log line; never feature values."""

    rows: int | None = None
    version: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_runtime: _Runtime | None = None
_runtime_lock = threading.Lock()


def runtime() -> _Runtime:
    """Settings and model store, made once per process on first use (not at import)."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            settings = settings_module.from_env()
            backend = open_backend(
                settings.model_store,
                settings.storage_timeout_seconds,
                settings.storage_emulator_host,
            )
            _runtime = _Runtime(settings, ModelStore(backend, settings.model_refresh_seconds))
        return _runtime


def serve(request: flask.Request, model_name: str, function_name: str) -> flask.Response:
    """Answer one request for `model_name`; always JSON or CSV, never a stack trace."""
    started = time.perf_counter()
    outcome = _Outcome()
    settings: Settings | None = None
    try:
        settings = runtime().settings
        response = _route(request, model_name, function_name, settings, outcome)
    except MarketcastError as error:
        response = error_response(error)
        outcome.error = error.code
    except Exception:  # noqa: BLE001 (the last line of defence: log it, answer a clean 500)
        log("ERROR", "unhandled error", exc_info=_traceback())
        response = error_response(MarketcastError("internal error"))
        outcome.error = "internal"
    if settings is not None:
        _add_cors_headers(response, request.headers.get("Origin"), settings)
    _add_common_headers(response)
    _log_request(request, response, outcome, started, model_name, settings)
    return response


def _route(
    request: flask.Request,
    model_name: str,
    function_name: str,
    settings: Settings,
    outcome: _Outcome,
) -> flask.Response:
    if request.path.rstrip("/") not in ("", f"/{function_name}"):
        raise NotFound(f"no such path: {_safe_path(request.path)}; POST or GET / instead")
    if request.method == "OPTIONS":
        return _preflight(request, settings)
    if request.method in ("GET", "HEAD"):
        model = runtime().store.get(model_name)
        outcome.version = model.version
        return _json(model_card(model, function_name), model_name, model.version)
    if request.method == "POST":
        return _predict(request, model_name, settings, outcome)
    raise MethodNotAllowed(f"{request.method} is not allowed here", ALLOWED_METHODS)


def _predict(
    request: flask.Request, model_name: str, settings: Settings, outcome: _Outcome
) -> flask.Response:
    """parse -> validate -> predict -> respond."""
    is_csv = _media_type(request) == "text/csv"
    body = _read_body(request, settings.max_body_bytes)
    if is_csv:
        decoded = codecs.decode_csv(body, settings.max_instances)
        parameters = options_from_query(request.args)
    else:
        decoded = codecs.decode_json(body, settings.max_instances)
        parameters = dict(decoded.parameters)
    outcome.rows = len(decoded.rows)
    model = runtime().store.get(model_name)
    outcome.version = model.version
    options = parse_options(parameters)
    validated = validate(decoded.rows, model.schema, allow_extra=is_csv)
    if validated.problems:
        raise InvalidInput(
            f"{len(validated.rejected_rows) or 'all'} of {len(decoded.rows)} rows are invalid",
            validated.problems,
        )
    result = predict(model, validated.features, options)
    if is_csv:
        table = decoded.rows.join(result)
        return _csv(codecs.encode_csv(table), model_name, model.version)
    return _json(
        {
            "predictions": json_predictions(
                result, model.schema.target, model.schema.feature_names, options
            ),
            "model": {"name": model_name, "version": model.version},
        },
        model_name,
        model.version,
    )


def _media_type(request: flask.Request) -> str:
    media_type = (request.mimetype or "").lower()
    if media_type in ("application/json", "text/csv"):
        return media_type
    if not media_type:
        raise UnsupportedMediaType("set Content-Type: application/json or text/csv")
    raise UnsupportedMediaType(
        f"Content-Type {media_type[:100]} is not supported; use application/json or text/csv"
    )


def _read_body(request: flask.Request, limit: int) -> bytes:
    """At most `limit` bytes, refused before reading when Content-Length says more."""
    too_large = PayloadTooLarge(f"request body is larger than {limit} bytes")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    chunks, total = [], 0
    while chunk := request.stream.read(min(READ_CHUNK_BYTES, limit + 1 - total)):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise too_large
    return b"".join(chunks)


def _preflight(request: flask.Request, settings: Settings) -> flask.Response:
    origin = request.headers.get("Origin")
    response = flask.Response(status=204)
    response.headers["Allow"] = ", ".join(ALLOWED_METHODS)
    if origin is None:
        return response
    if not _origin_allowed(origin, settings):
        raise OriginNotAllowed("this origin may not call the function from a browser")
    response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "3600"
    return response


def _origin_allowed(origin: str, settings: Settings) -> bool:
    allowed = settings.cors_allowed_origins
    return "*" in allowed or origin.rstrip("/") in allowed


def _add_cors_headers(response: flask.Response, origin: str | None, settings: Settings) -> None:
    response.vary.add("Origin")
    if origin is None or not _origin_allowed(origin, settings):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS


def _add_common_headers(response: flask.Response) -> None:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"


def _json(document: Any, model_name: str, version: str) -> flask.Response:
    response = flask.Response(codecs.encode_json(document), mimetype="application/json")
    _model_headers(response, model_name, version)
    return response


def _csv(body: bytes, model_name: str, version: str) -> flask.Response:
    response = flask.Response(body, content_type="text/csv; charset=utf-8")
    _model_headers(response, model_name, version)
    return response


def _model_headers(response: flask.Response, model_name: str, version: str) -> None:
    response.headers["X-Model-Name"] = model_name
    response.headers["X-Model-Version"] = version


def error_response(error: MarketcastError) -> flask.Response:
    """The one place an error becomes a response: `{"error": {code, message, details}}`."""
    document = {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": [problem.to_dict() for problem in error.problems],
        }
    }
    body = codecs.encode_json(document)
    # A streamed body tells the framework not to read an unread request body into memory.
    payload: Any = iter([body]) if isinstance(error, PayloadTooLarge) else body
    response = flask.Response(payload, status=error.status, mimetype="application/json")
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allow)
    if isinstance(error, ModelUnavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def _log_request(
    request: flask.Request,
    response: flask.Response,
    outcome: _Outcome,
    started: float,
    model_name: str,
    settings: Settings | None,
) -> None:
    latency = time.perf_counter() - started
    severity = (
        "ERROR"
        if response.status_code >= 500
        else ("WARNING" if response.status_code >= 400 else "INFO")
    )
    log(
        severity,
        f"{request.method} {_safe_path(request.path)} {response.status_code}",
        httpRequest={
            "requestMethod": request.method,
            "requestUrl": _safe_path(request.path),
            "status": response.status_code,
            "latency": f"{latency:.6f}s",
            "requestSize": str(request.content_length or 0),
            "userAgent": (request.user_agent.string or "")[:200],
        },
        model=model_name,
        model_version=outcome.version,
        rows=outcome.rows,
        error=outcome.error,
        **trace_fields(
            request.headers.get("X-Cloud-Trace-Context"), settings.project if settings else None
        ),
    )


def _safe_path(path: str) -> str:
    return path[:200]


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


def _framework_error(error: HTTPException) -> flask.Response:
    """Errors the framework raises before our code runs (e.g. /favicon.ico) leave as JSON too."""
    status = error.code or 500
    wrapped = MarketcastError(error.name if status < 500 else "internal error")
    wrapped.status, wrapped.code = status, error.name.lower().replace(" ", "_")
    return error_response(wrapped)


# Registers on the app functions-framework is building when this module is loaded by it;
# a no-op anywhere else.
functions_framework.errorhandler(HTTPException)(_framework_error)
