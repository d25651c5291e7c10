"""What the HTTP edge and the protocol handlers share: the process runtime, one call's state,
the request as the handlers see it, replies out, and the one place an error becomes a reply.

Handlers are plain functions from a `Call` to a `Reply`: they see no server objects, so the
same handler serves behind any HTTP stack, and runs on the event loop or on a worker thread.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from shared import codecs
from shared import settings as settings_module
from shared.errors import (
    BodyTooLarge,
    MarketcastError,
    MethodNotAllowed,
    PayloadTooLarge,
    UnsupportedMediaType,
    one_line,
)
from shared.once import once
from shared.settings import Settings
from shared.store import LoadedModel, ModelStore, open_backend

JSON = "application/json"
# On every answer of every function: never cached, never read as another type than it says.
EVERY_ANSWER = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
CSV = "text/csv; charset=utf-8"
FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends without -H


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
class Incoming:
    """One request: `headers` by lowercase name (the last of a repeated one); the query string
    as sent; `body` is read (within MAX_BODY_BYTES) only for a POST."""

    method: str
    path: str
    headers: Mapping[str, str]
    query_string: bytes = b""
    body: bytes = b""

    @property
    def query(self) -> dict[str, str]:
        """One value per name (the last of a repeated one), decoded."""
        return dict(parse_qsl(self.query_string.decode("latin-1"), keep_blank_values=True))

    @property
    def mimetype(self) -> str:
        """The Content-Type without its parameters, lowercased ("" when there is none)."""
        return self.headers.get("content-type", "").partition(";")[0].strip().lower()


@dataclass
class Reply:
    """A response, before the server's own type: `headers` beyond Content-Type."""

    body: bytes
    status: int = 200
    media_type: str = JSON
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Call:
    """One request as the handlers see it, and what it did (for its log line)."""

    request: Incoming
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


Handler = Callable[[Call], Reply]


def media_type(request: Incoming) -> str:
    """The root's body: application/json or text/csv, as Content-Type says; the root speaks
    both, so a body of no type, or of curl's form type, is not guessed at (415)."""
    kind = request.mimetype
    if kind in ("application/json", "text/csv"):
        return kind
    if not kind:
        raise UnsupportedMediaType("set Content-Type: application/json or text/csv")
    raise UnsupportedMediaType(
        f"Content-Type {kind[:100]} is not supported; use application/json or text/csv"
    )


def require_json(request: Incoming) -> None:
    """The bodies of KServe V1, Open Inference and BigQuery are JSON only: Content-Type
    application/json, none, or curl's form type, which KServe's own `curl -d` examples send."""
    kind = request.mimetype
    if kind not in ("application/json", "", FORM):
        raise UnsupportedMediaType(
            f"Content-Type {kind[:100]} is not supported here; use application/json"
        )


def json_reply(
    document: Any, model_name: str | None = None, version: str | None = None, status: int = 200
) -> Reply:
    reply = Reply(codecs.encode_json(document), status)
    if model_name and version:
        reply.headers.update(model_headers(model_name, version))
    return reply


def csv_reply(body: bytes, model_name: str, version: str) -> Reply:
    return Reply(body, media_type=CSV, headers=model_headers(model_name, version))


def model_headers(model_name: str, version: str) -> dict[str, str]:
    return {"X-Model-Name": model_name, "X-Model-Version": version}


def error_reply(
    error: MarketcastError, style: Style = Style.NATIVE, model_name: str | None = None
) -> Reply:
    """The one place an error becomes a reply, in the body shape the caller speaks.

    `model_name`: the model of the function answering; a batch too large for it is told where
    larger ones go."""
    document = error_document(error, style, model_name)
    reply = Reply(codecs.encode_json(document), status_for(error, style))
    if isinstance(error, MethodNotAllowed):
        reply.headers["Allow"] = ", ".join(error.allow)
    if error.retry_after is not None:
        reply.headers["Retry-After"] = str(error.retry_after)
    if isinstance(error, BodyTooLarge):
        reply.headers["Connection"] = "close"
    return reply


def status_for(error: MarketcastError, style: Style) -> int:
    """BigQuery retries 408, 429, 500, 503 and 504 and fails the query on anything else; a
    caller's mistake there is a plain 400, so the query fails at once with our message. A 405
    stays 405: BigQuery only POSTs, so only a person or a tool gets it, and it says more."""
    mistake = 400 <= error.status < 500 and not isinstance(error, MethodNotAllowed)
    if style is Style.BIGQUERY and mistake:
        return 400
    return error.status


def error_document(
    error: MarketcastError, style: Style, model_name: str | None = None
) -> dict[str, Any]:
    message = error.message
    if isinstance(error, PayloadTooLarge):
        message = _with_larger_batches(message, style, model_name)
    if style is Style.BIGQUERY:
        return {"errorMessage": one_line(message, error.problems)}
    if style is Style.KSERVE:
        return {"error": one_line(message, error.problems)}
    return {
        "error": {
            "code": error.code,
            "message": message,
            "details": [problem.to_dict() for problem in error.problems],
        }
    }


def _with_larger_batches(message: str, style: Style, model_name: str | None) -> str:
    """A limit's message, and where a batch over it goes from the caller's protocol: BigQuery
    chose the batch, its user chooses the batch size; any other caller can score a file of any
    size as an upload (the bucket layout of `shared.uploads`), or from BigQuery."""
    if style is Style.BIGQUERY:
        return f"{message}; {codecs.SMALLER_BATCHES}"
    if model_name is None:
        return message
    return (
        f"{message}; score larger batches as a CSV file uploaded to incoming/{model_name}/ "
        "in the data bucket, or from BigQuery"
    )
