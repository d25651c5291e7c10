"""The HTTP edge shared by the prediction functions: Flask request in, Flask response out.

`serve` routes the request (functions/http_routes.py), turns every failure into the error body
the caller speaks, adds CORS and common headers, and writes one structured log line. Nothing
below the functions package sees Flask.
"""

from __future__ import annotations

import time
import traceback

import flask
import functions_framework
from werkzeug.exceptions import HTTPException

from functions.http_io import Style, error_response, runtime
from functions.http_routes import Call, origin_allowed, route
from shared.errors import MarketcastError
from shared.logs import log, trace_fields
from shared.settings import Settings

CORS_EXPOSED_HEADERS = "X-Model-Name, X-Model-Version, Retry-After"


def serve(request: flask.Request, model_name: str, function_name: str) -> flask.Response:
    """Answer one request for `model_name`; always JSON or CSV, never a stack trace."""
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
