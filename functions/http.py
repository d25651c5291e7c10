"""The HTTP edge of the prediction functions, on functions-framework's ASGI stack: a Starlette
request in, a Starlette response out.

    /                                   GET model card; POST JSON, CSV or a BigQuery batch
    /bigquery                           POST a BigQuery batch; every answer in BigQuery's shape
    /v1/models/<model>                  GET status              (KServe V1)
    /v1/models/<model>:predict          POST instances          (KServe V1)
    /v1/models                          GET the one model's name (KServe V1)
    /v2                                 GET server metadata     (Open Inference Protocol)
    /v2/health/live, /v2/health/ready   GET
    /v2/models/<model>[/versions/<v>]   GET model metadata
    /v2/models/<model>[/versions/<v>]/ready   GET
    /v2/models/<model>[/versions/<v>]/infer   POST tensors

Every path is also served under /<function name>, the path of the function's own URL.

`serve` routes a request to its handler (functions/protocols.py), reads a POST body as it
streams in (never past MAX_BODY_BYTES), runs the handler, turns every failure into the error
body the caller speaks, adds CORS and common headers, and writes one structured log line.
Nothing below this module sees Starlette.

A body over MAX_BODY_BYTES is never held in memory, but the rest of it is read and thrown away
(`drain_allowance` says how much) before the 413 goes out and closes the connection: a client
still sending when the server closes gets a reset instead of the answer.

Where a handler runs is decided in `_executor`, and only there:
- on the event loop, when the body is small and the model is in memory with no check due:
  a small request costs less than a hop to a thread would;
- on the one batch thread, when the body is over INLINE_BODY_BYTES: a 100,000-row batch never
  holds the loop, so small requests go on being answered while it runs;
- on a storage thread, when the model must first be loaded or checked against current.json:
  that waits on storage, which must not stop the loop either.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import re
import time
import traceback
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from functions import protocols
from functions.http_io import (
    EVERY_ANSWER,
    Call,
    Handler,
    Incoming,
    Reply,
    Style,
    error_reply,
    runtime,
)
from shared.errors import (
    BadRequest,
    BodyTooLarge,
    MarketcastError,
    MethodNotAllowed,
    NotFound,
    OriginNotAllowed,
)
from shared.logs import log, trace_fields
from shared.schema import MODELS, ServedModel
from shared.settings import Settings

CORS_ALLOWED_HEADERS = "Content-Type, Authorization, X-Cloud-Trace-Context"
CORS_EXPOSED_HEADERS = "X-Model-Name, X-Model-Version, Retry-After"
READ, WRITE = ("GET", "HEAD", "OPTIONS"), ("POST", "OPTIONS")
# About 250 JSON rows: work that takes the loop well under a millisecond.
INLINE_BODY_BYTES = 16 * 1024
# One thread: batches are CPU work under one interpreter lock, so more would only take turns
# with each other and with the loop.
_BATCHES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="batch")
_STORAGE = ThreadPoolExecutor(thread_name_prefix="storage")
# Cloud Run forwards no HTTP/1 request body over 32 MiB: draining up to that much lets every
# client that reaches a deployed function read its 413. No time bound: a client that sends
# slowly holds the connection no longer than it could with a body under the limit.
DRAIN_BYTES = 32 * 1024 * 1024
_MODEL_IN_PATH = re.compile(r"/v[12]/models/([^/:]+)")


async def serve(request: Request, model: ServedModel) -> Response:
    """Answer one request for `model`; always JSON or CSV, never a stack trace."""
    started = time.perf_counter()
    incoming = _incoming(request.scope)
    call: Call | None = None
    error_code: str | None = None
    try:
        call = Call(incoming, model.name, model.function, runtime().settings)
        reply = await _reply(call, request)
    except MarketcastError as error:
        reply = error_reply(error, call.style if call else Style.NATIVE, model.name)
        error_code = error.code
    except Exception:  # noqa: BLE001 (the last line of defence: log it, answer a clean 500)
        log("ERROR", "unhandled error", exc_info=traceback.format_exc())
        internal = MarketcastError("internal error")
        reply = error_reply(internal, call.style if call else Style.NATIVE)
        error_code = internal.code
    _add_common_headers(reply, incoming, call.settings if call else None)
    _log_request(incoming, reply, call, error_code, started, model.name)
    return Response(reply.body, reply.status, reply.headers, reply.media_type)


def _incoming(scope: Mapping[str, Any]) -> Incoming:
    """The request as handlers see it, read from the ASGI scope (header names come lowercase)."""
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    return Incoming(scope["method"], scope["path"], headers, scope["query_string"])


async def _reply(call: Call, request: Request) -> Reply:
    handler = route(call)
    if call.request.method == "POST":
        limit = call.settings.max_body_bytes
        call.request.body = await read_body(request, call.request.headers, limit)
    executor = _executor(call)
    if executor is None:
        return handler(call)
    run = functools.partial(contextvars.copy_context().run, handler, call)
    return await asyncio.get_running_loop().run_in_executor(executor, run)


def _executor(call: Call) -> Executor | None:
    """Where the handler runs (see the module docstring); None: on the event loop."""
    if len(call.request.body) > INLINE_BODY_BYTES:
        return _BATCHES
    if runtime().store.ready(call.model_name):
        return None
    return _STORAGE


async def read_body(request: Request, headers: Mapping[str, str], limit: int) -> bytes:
    """At most `limit` bytes. A body over it, by its Content-Length or by the bytes that arrive
    (refused in the chunk that passes the limit), is never held in memory: BodyTooLarge, once
    what `drain_allowance` allows of the rest has been read and thrown away."""
    too_large = BodyTooLarge(f"request body is larger than {limit} bytes")
    stream = request.stream()
    declared = headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit:
        await _drain(stream, drain_allowance(headers, 0))
        raise too_large
    chunks, total = [], 0
    try:
        async for chunk in stream:
            total += len(chunk)
            if total > limit:
                await _drain(stream, drain_allowance(headers, total))
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect as exc:  # nobody will read the answer; the log line says why
        raise BadRequest("the client closed the connection before sending the whole body") from exc
    return b"".join(chunks)


def drain_allowance(headers: Mapping[str, str], taken: int) -> int:
    """How many more bytes of a refused body, `taken` bytes into it, to read and throw away so
    that a client still sending can read the 413: the rest, up to DRAIN_BYTES in all. None when
    the client waits for 100 Continue before sending (the 413 tells it not to), or says the
    body is over DRAIN_BYTES (it would be cut off anyway, so it is cut off at once)."""
    if taken == 0 and headers.get("expect", "").lower() == "100-continue":
        return 0
    declared = headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > DRAIN_BYTES:
        return 0
    return max(DRAIN_BYTES - taken, 0)


async def _drain(stream: AsyncIterator[bytes], allowance: int) -> None:
    """Read and discard up to `allowance` bytes (to the end of the chunk that passes it)."""
    if allowance <= 0:
        return
    try:
        async for chunk in stream:
            allowance -= len(chunk)
            if allowance < 0:
                return
    except ClientDisconnect:  # it stopped sending: nobody will read the 413 either
        return


def route(call: Call) -> Handler:
    """The handler for the call's path and method (OPTIONS: the preflight)."""
    path = local_path(call.request.path, call.function_name)
    call.style = style_of(path)
    path, version = _unversioned(path, call.model_name)
    routes = _routes(call.model_name)
    if path not in routes:
        raise not_found(call.request.path, path, call.model_name, call.function_name)
    methods, handler = routes[path]
    if call.request.method == "OPTIONS":
        return functools.partial(preflight, methods=methods)
    if call.request.method not in methods:
        raise MethodNotAllowed(f"{call.request.method} is not allowed here", methods)
    return handler if version is None else functools.partial(_live_only, handler, version)


def not_found(sent: str, path: str, model_name: str, function_name: str) -> NotFound:
    """A 404 that says where to go: which function serves a model the path names when it is not
    this one; else the model this function serves and every path it answers."""
    elsewhere = _named_model(path)
    said = f"no such path: {sent[:200]}"
    if elsewhere is not None and elsewhere.name != model_name:
        return NotFound(
            f"{said}; the model {elsewhere.name} is served by the function {elsewhere.function}, "
            f"and this function, {function_name}, serves {model_name}"
        )
    paths = ", ".join(_routes(model_name))
    return NotFound(
        f"{said}; {function_name} serves the model {model_name} at {paths} "
        f"(each also under /{function_name})"
    )


def _named_model(path: str) -> ServedModel | None:
    """The model a path names: under /v1/models/ or /v2/models/, or by its function's name as
    the path's first segment (the function's own URL); None when it names no model served."""
    first = path.split("/", 2)[1]
    by_function = {served.function: served for served in MODELS.values()}
    if first in by_function:
        return by_function[first]
    named = _MODEL_IN_PATH.match(path)
    return MODELS.get(named[1]) if named else None


def style_of(path: str) -> Style:
    """The error shape of a path's callers, known before the body is read."""
    if path.startswith(("/v1/", "/v2")):
        return Style.KSERVE
    if path == "/bigquery":
        return Style.BIGQUERY
    return Style.NATIVE


def local_path(path: str, function_name: str) -> str:
    path = path.rstrip("/") or "/"
    prefix = f"/{function_name}"
    if path == prefix or path.startswith(prefix + "/"):
        path = path[len(prefix) :] or "/"
    return path


def _unversioned(path: str, model_name: str) -> tuple[str, str | None]:
    """/v2/models/<m>/versions/<v>/... is the path without the version, and the version."""
    prefix = f"/v2/models/{model_name}/versions/"
    if not path.startswith(prefix):
        return path, None
    version, _, rest = path[len(prefix) :].partition("/")
    return f"/v2/models/{model_name}" + (f"/{rest}" if rest else ""), version


def _live_only(handler: Handler, version: str, call: Call) -> Reply:
    """A versioned path is served only for the live version."""
    live = call.model().version
    if version != live:
        raise NotFound(f"version {version[:80]} is not served; the live version is {live}")
    return handler(call)


def _routes(model: str) -> Mapping[str, tuple[tuple[str, ...], Handler]]:
    return {
        "/": (("GET", "HEAD", "POST", "OPTIONS"), protocols.root),
        "/bigquery": (WRITE, protocols.bigquery),
        f"/v1/models/{model}": (READ, protocols.v1_status),
        f"/v1/models/{model}:predict": (WRITE, protocols.v1_predict),
        "/v1/models": (READ, protocols.v1_models),
        "/v2": (READ, protocols.v2_server),
        "/v2/health/live": (READ, protocols.v2_live),
        "/v2/health/ready": (READ, protocols.v2_ready),
        f"/v2/models/{model}": (READ, protocols.v2_metadata),
        f"/v2/models/{model}/ready": (READ, protocols.v2_ready),
        f"/v2/models/{model}/infer": (WRITE, protocols.v2_infer),
    }


def preflight(call: Call, methods: tuple[str, ...]) -> Reply:
    origin = call.request.headers.get("origin")
    reply = Reply(b"", 204, headers={"Allow": ", ".join(methods)})
    if origin is None:
        return reply
    if not origin_allowed(origin, call.settings):
        raise OriginNotAllowed("this origin may not call the function from a browser")
    reply.headers["Access-Control-Allow-Methods"] = ", ".join(m for m in methods if m != "HEAD")
    reply.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
    reply.headers["Access-Control-Max-Age"] = "3600"
    return reply


def origin_allowed(origin: str, settings: Settings) -> bool:
    allowed = settings.cors_allowed_origins
    return "*" in allowed or origin.rstrip("/") in allowed


def _add_common_headers(reply: Reply, incoming: Incoming, settings: Settings | None) -> None:
    reply.headers.update(EVERY_ANSWER)
    if settings is None:
        return
    reply.headers["Vary"] = "Origin"
    origin = incoming.headers.get("origin")
    if origin is None or not origin_allowed(origin, settings):
        return
    reply.headers["Access-Control-Allow-Origin"] = origin
    reply.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS


def _log_request(
    incoming: Incoming,
    reply: Reply,
    call: Call | None,
    error_code: str | None,
    started: float,
    model_name: str,
) -> None:
    status = reply.status
    severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    path = incoming.path[:200]
    log(
        severity,
        f"{incoming.method} {path} {status}",
        httpRequest={
            "requestMethod": incoming.method,
            "requestUrl": path,
            "status": status,
            "latency": f"{time.perf_counter() - started:.6f}s",
            "requestSize": str(_request_size(incoming)),
            "userAgent": incoming.headers.get("user-agent", "")[:200],
        },
        model=model_name,
        model_version=call.version if call else None,
        rows=call.rows if call else None,
        protocol=call.style.value if call else None,
        error=error_code,
        **(call.log if call else {}),
        **trace_fields(
            incoming.headers.get("x-cloud-trace-context"),
            call.settings.project if call else None,
        ),
    )


def _request_size(incoming: Incoming) -> int:
    declared = incoming.headers.get("content-length", "")
    return int(declared) if declared.isdecimal() else len(incoming.body)
