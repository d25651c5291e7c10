"""What the HTTP edge and the protocol handlers share: the process runtime, one call's state,
bodies in and responses out, and the one place an error becomes a response."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask

from shared import codecs
from shared import settings as settings_module
from shared.errors import (
    MarketcastError,
    MethodNotAllowed,
    ModelUnavailable,
    PayloadTooLarge,
    UnsupportedMediaType,
    one_line,
)
from shared.once import once
from shared.settings import Settings
from shared.store import LoadedModel, ModelStore, open_backend

READ_CHUNK_BYTES = 64 * 1024


class Style(enum.Enum):
    """Which error body a caller understands."""

    NATIVE = "native"  # {"error": {"code", "message", "details"}}
    KSERVE = "kserve"  # {"error": "message"} (KServe V1 and the Open Inference Protocol)
    BIGQUERY = "bigquery"  # {"errorMessage": "message"}


@dataclass
class Runtime:
    settings: Settings
    store: ModelStore


def _make_runtime() -> Runtime:
    settings = settings_module.from_env()
    backend = open_backend(
        settings.model_store, settings.storage_timeout_seconds, settings.storage_emulator_host
    )
    return Runtime(settings, ModelStore(backend, settings.model_refresh_seconds))


runtime = once(_make_runtime)
"""Settings and model store, made once per process on first use (not at import)."""


@dataclass
class Call:
    """One request as the handlers see it, and what it did (for its log line)."""

    request: flask.Request
    model_name: str
    function_name: str
    settings: Settings
    style: Style = Style.NATIVE
    rows: int | None = None
    version: str | None = None
    log: dict[str, Any] = field(default_factory=dict)

    def model(self) -> LoadedModel:
        """The live model (loaded on first use); its version goes into the log line."""
        model = runtime().store.get(self.model_name)
        self.version = model.version
        return model


Handler = Callable[[Call], flask.Response]


def media_type(request: flask.Request, *, default: str | None = None) -> str:
    """application/json or text/csv; a missing Content-Type means `default` where given."""
    kind = (request.mimetype or "").lower()
    if kind in ("application/json", "text/csv"):
        return kind
    if not kind and default:
        return default
    if not kind:
        raise UnsupportedMediaType("set Content-Type: application/json or text/csv")
    raise UnsupportedMediaType(
        f"Content-Type {kind[:100]} is not supported; use application/json or text/csv"
    )


def read_body(request: flask.Request, limit: int) -> bytes:
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


def json_response(
    document: Any, model_name: str | None = None, version: str | None = None, status: int = 200
) -> flask.Response:
    response = flask.Response(codecs.encode_json(document), status, mimetype="application/json")
    if model_name and version:
        model_headers(response, model_name, version)
    return response


def csv_response(body: bytes, model_name: str, version: str) -> flask.Response:
    response = flask.Response(body, content_type="text/csv; charset=utf-8")
    model_headers(response, model_name, version)
    return response


def model_headers(response: flask.Response, model_name: str, version: str) -> None:
    response.headers["X-Model-Name"] = model_name
    response.headers["X-Model-Version"] = version


def error_response(error: MarketcastError, style: Style = Style.NATIVE) -> flask.Response:
    """The one place an error becomes a response, in the body shape the caller speaks."""
    body = codecs.encode_json(error_document(error, style))
    # A streamed body tells the framework not to read an unread request body into memory.
    payload: Any = iter([body]) if isinstance(error, PayloadTooLarge) else body
    response = flask.Response(payload, status=status_for(error, style), mimetype="application/json")
    if isinstance(error, MethodNotAllowed):
        response.headers["Allow"] = ", ".join(error.allow)
    if isinstance(error, ModelUnavailable):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def status_for(error: MarketcastError, style: Style) -> int:
    """BigQuery retries 408, 429, 500, 503 and 504 and fails the query on anything else; a
    caller's mistake there is a plain 400, so the query fails at once with our message."""
    if style is Style.BIGQUERY and 400 <= error.status < 500:
        return 400
    return error.status


def error_document(error: MarketcastError, style: Style) -> dict[str, Any]:
    if style is Style.BIGQUERY:
        return {"errorMessage": one_line(error.message, error.problems)}
    if style is Style.KSERVE:
        return {"error": one_line(error.message, error.problems)}
    return {
        "error": {
            "code": error.code,
            "message": error.message,
            "details": [problem.to_dict() for problem in error.problems],
        }
    }
