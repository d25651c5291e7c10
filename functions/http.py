"""The HTTP edge of the prediction functions: Flask request in, Flask response out.

    /                                   GET model card; POST JSON, CSV or a BigQuery batch
    /v1/models/<model>                  GET status              (KServe V1)
    /v1/models/<model>:predict          POST instances          (KServe V1)
    /v2                                 GET server metadata     (Open Inference Protocol)
    /v2/health/live, /v2/health/ready   GET
    /v2/models/<model>[/versions/<v>]   GET model metadata
    /v2/models/<model>[/versions/<v>]/ready   GET
    /v2/models/<model>[/versions/<v>]/infer   POST tensors

Every path is also served under /<function name>, the path of the function's own URL.

`serve` routes a request to its handler (functions/protocols.py), turns every failure into the
error body the caller speaks, adds CORS and common headers, and writes one structured log line.
Nothing below the functions package sees Flask.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Mapping

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from functions import protocols
from functions.http_io import Call, Handler, Style, error_response, runtime
from shared.errors import MarketcastError, MethodNotAllowed, NotFound, OriginNotAllowed
from shared.logs import log, trace_fields
from shared.schema import ServedModel
from shared.settings import Settings

CORS_ALLOWED_HEADERS = "Content-Type, Authorization, X-Cloud-Trace-Context"
CORS_EXPOSED_HEADERS = "X-Model-Name, X-Model-Version, Retry-After"
READ, WRITE = ("GET", "HEAD", "OPTIONS"), ("POST", "OPTIONS")


def serve(request: flask.Request, model: ServedModel) -> flask.Response:
    """Answer one request for `model`; always JSON or CSV, never a stack trace."""
    model_name, function_name = model.name, model.function
    started = time.perf_counter()
    call: Call | None = None
    error_code: str | None = None
    try:
        call = Call(request, model_name, function_name, runtime().settings)
        response = route(call)
    except MarketcastError as error:
        response = error_response(error, call.style if call else Style.NATIVE)
        error_code = error.code
    except Exception:  # noqa: BLE001 (the last line of defence: log it, answer a clean 500)
        log("ERROR", "unhandled error", exc_info=traceback.format_exc())
        internal = MarketcastError("internal error")
        response = error_response(internal, call.style if call else Style.NATIVE)
        error_code = internal.code
    if call is not None:
        _add_cors_headers(response, request.headers.get("Origin"), call.settings)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    _log_request(request, response, call, error_code, started, model_name)
    return response


def route(call: Call) -> flask.Response:
    path = local_path(call.request.path, call.function_name)
    call.style = Style.KSERVE if path.startswith(("/v1/", "/v2")) else Style.NATIVE
    path = _unversioned(path, call.model_name)
    routes = _routes(call.model_name)
    if path not in routes:
        raise NotFound(f"no such path: {call.request.path[:200]}")
    methods, handler = routes[path]
    if call.request.method == "OPTIONS":
        return preflight(call.request, call.settings, methods)
    if call.request.method not in methods:
        raise MethodNotAllowed(f"{call.request.method} is not allowed here", methods)
    return handler(call)


def local_path(path: str, function_name: str) -> str:
    path = path.rstrip("/") or "/"
    prefix = f"/{function_name}"
    if path == prefix or path.startswith(prefix + "/"):
        path = path[len(prefix) :] or "/"
    return path


def _unversioned(path: str, model_name: str) -> str:
    """/v2/models/<m>/versions/<v>/... is served only for the live version."""
    prefix = f"/v2/models/{model_name}/versions/"
    if not path.startswith(prefix):
        return path
    version, _, rest = path[len(prefix) :].partition("/")
    live = runtime().store.get(model_name).version
    if version != live:
        raise NotFound(f"version {version[:80]} is not served; the live version is {live}")
    return f"/v2/models/{model_name}" + (f"/{rest}" if rest else "")


def _routes(model: str) -> Mapping[str, tuple[tuple[str, ...], Handler]]:
    return {
        "/": (("GET", "HEAD", "POST", "OPTIONS"), protocols.root),
        f"/v1/models/{model}": (READ, protocols.v1_status),
        f"/v1/models/{model}:predict": (WRITE, protocols.v1_predict),
        "/v2": (READ, protocols.v2_server),
        "/v2/health/live": (READ, protocols.v2_live),
        "/v2/health/ready": (READ, protocols.v2_ready),
        f"/v2/models/{model}": (READ, protocols.v2_metadata),
        f"/v2/models/{model}/ready": (READ, protocols.v2_ready),
        f"/v2/models/{model}/infer": (WRITE, protocols.v2_infer),
    }


def preflight(
    request: flask.Request, settings: Settings, methods: tuple[str, ...]
) -> flask.Response:
    origin = request.headers.get("Origin")
    response = flask.Response(status=204)
    response.headers["Allow"] = ", ".join(methods)
    if origin is None:
        return response
    if not origin_allowed(origin, settings):
        raise OriginNotAllowed("this origin may not call the function from a browser")
    response.headers["Access-Control-Allow-Methods"] = ", ".join(m for m in methods if m != "HEAD")
    response.headers["Access-Control-Allow-Headers"] = CORS_ALLOWED_HEADERS
    response.headers["Access-Control-Max-Age"] = "3600"
    return response


def origin_allowed(origin: str, settings: Settings) -> bool:
    allowed = settings.cors_allowed_origins
    return "*" in allowed or origin.rstrip("/") in allowed


def _add_cors_headers(response: flask.Response, origin: str | None, settings: Settings) -> None:
    response.vary.add("Origin")
    if origin is None or not origin_allowed(origin, settings):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSED_HEADERS


def _log_request(
    request: flask.Request,
    response: flask.Response,
    call: Call | None,
    error_code: str | None,
    started: float,
    model_name: str,
) -> None:
    status = response.status_code
    severity = "ERROR" if status >= 500 else "WARNING" if status >= 400 else "INFO"
    path = request.path[:200]
    log(
        severity,
        f"{request.method} {path} {status}",
        httpRequest={
            "requestMethod": request.method,
            "requestUrl": path,
            "status": status,
            "latency": f"{time.perf_counter() - started:.6f}s",
            "requestSize": str(request.content_length or 0),
            "userAgent": (request.user_agent.string or "")[:200],
        },
        model=model_name,
        model_version=call.version if call else None,
        rows=call.rows if call else None,
        protocol=call.style.value if call else None,
        error=error_code,
        **(call.log if call else {}),
        **trace_fields(
            request.headers.get("X-Cloud-Trace-Context"),
            call.settings.project if call else None,
        ),
    )


def _framework_error(error: HTTPException) -> flask.Response:
    """Errors the framework raises before our code runs (e.g. /favicon.ico) leave as JSON too."""
    status = error.code or 500
    wrapped = MarketcastError(error.name if status < 500 else "internal error")
    wrapped.status, wrapped.code = status, error.name.lower().replace(" ", "_")
    return error_response(wrapped)


# Registers on the app functions-framework is building when this module is loaded by it;
# a no-op anywhere else.
functions_framework.errorhandler(HTTPException)(_framework_error)
