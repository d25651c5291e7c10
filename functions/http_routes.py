"""The paths each prediction function answers, and one handler per path.

    /                                   GET model card; POST JSON, CSV or a BigQuery batch
    /v1/models/<model>                  GET status              (KServe V1)
    /v1/models/<model>:predict          POST instances          (KServe V1)
    /v2                                 GET server metadata     (Open Inference Protocol)
    /v2/health/live, /v2/health/ready   GET
    /v2/models/<model>[/versions/<v>]   GET model metadata
    /v2/models/<model>[/versions/<v>]/ready   GET
    /v2/models/<model>[/versions/<v>]/infer   POST tensors

Every path is also served under /<function name>, the path of the function's own URL.

Small JSON requests are answered from the model's serving form in plain Python; the modules
that import pandas are imported inside the handlers that need them, so a function starts and
answers such requests without loading pandas or scikit-learn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import flask

from functions.http_io import (
    Style,
    csv_response,
    json_response,
    media_type,
    read_body,
    runtime,
)
from shared import codecs
from shared.compiled_model import CompiledModel
from shared.errors import (
    BadRequest,
    InvalidInput,
    MethodNotAllowed,
    ModelUnavailable,
    NotFound,
    OriginNotAllowed,
    Problem,
)
from shared.model_card import model_card
from shared.options import (
    Options,
    check_available,
    interval_half_width,
    options_from_query,
    parse_options,
)
from shared.records import validate_records
from shared.settings import Settings
from shared.store import LoadedModel

if TYPE_CHECKING:
    import pandas as pd

SERVER_NAME = "marketcast"
CORS_ALLOWED_HEADERS = "Content-Type, Authorization, X-Cloud-Trace-Context"
READ, WRITE = ("GET", "HEAD", "OPTIONS"), ("POST", "OPTIONS")


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


Handler = Callable[[Call], flask.Response]


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
        "/": (("GET", "HEAD", "POST", "OPTIONS"), _root),
        f"/v1/models/{model}": (READ, _v1_status),
        f"/v1/models/{model}:predict": (WRITE, _v1_predict),
        "/v2": (READ, _v2_server),
        "/v2/health/live": (READ, _v2_live),
        "/v2/health/ready": (READ, _v2_ready),
        f"/v2/models/{model}": (READ, _v2_metadata),
        f"/v2/models/{model}/ready": (READ, _v2_ready),
        f"/v2/models/{model}/infer": (WRITE, _v2_infer),
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


# --- the function's own URL ------------------------------------------------------------------


def _root(call: Call) -> flask.Response:
    if call.request.method in ("GET", "HEAD"):
        model = _model(call)
        return json_response(model_card(model, call.function_name), model.name, model.version)
    kind = media_type(call.request)
    body = read_body(call.request, call.settings.max_body_bytes)
    if kind == "text/csv":
        return _predict_csv(call, body)
    document = codecs.parse_json(body)
    if isinstance(document, dict) and "calls" in document and "instances" not in document:
        call.style = Style.BIGQUERY  # a BigQuery remote-function batch
        return _bigquery(call, document)
    return _predict_json(call, document)


def _predict_json(call: Call, document: object) -> flask.Response:
    """parse -> validate -> predict -> respond."""
    parsed = codecs.envelope(document, call.settings.max_instances)
    call.rows = len(parsed.instances)
    model = _model(call)
    objects = codecs.instance_objects(parsed.instances, model.schema.feature_names)
    options = parse_options(parsed.parameters)
    compiled = model.compiled
    predictions: Any = None
    if compiled is not None and not options.explain:
        if len(objects) <= compiled.max_rows:
            predictions = _predict_small(model, compiled, objects, options)
        else:
            predictions = _predict_clean_batch(model, compiled, objects, options)
    if predictions is None:
        predictions = _predict_batch(model, objects, options)
    document = {"predictions": predictions, "model": {"name": model.name, "version": model.version}}
    return json_response(document, model.name, model.version)


def _predict_small(
    model: LoadedModel, compiled: CompiledModel, objects: list[dict[str, Any]], options: Options
) -> list[Any]:
    """The batch path's answers and errors, in plain Python (tests hold the two together)."""
    rows, _, problems = validate_records(objects, model.schema)
    if problems:
        raise _invalid(problems, len(objects))
    check_available(model, options)
    return _with_interval(model, compiled.predict(rows), options)


def _predict_clean_batch(
    model: LoadedModel, compiled: CompiledModel, objects: list[dict[str, Any]], options: Options
) -> Any:
    """A batch of clean rows, column by column; None sends it the reference way."""
    from shared import columnar

    columns = columnar.clean_columns(objects, model)
    if columns is None:
        return None
    check_available(model, options)
    values = columnar.predict_columns(model, compiled, columns)
    return values if options.interval is None else _with_interval(model, values.tolist(), options)


def _with_interval(model: LoadedModel, values: list[float], options: Options) -> list[Any]:
    """Bare numbers, or objects with the interval asked for (as json_predictions lays them out)."""
    if options.interval is None:
        return values
    width = interval_half_width(model, options.interval)
    target, level = model.schema.target, options.interval
    return [
        {target: v, "interval": {"level": level, "lower": v - width, "upper": v + width}}
        for v in values
    ]


def _predict_batch(
    model: LoadedModel, objects: list[dict[str, Any]], options: Options
) -> list[Any]:
    from shared.inference import json_predictions

    known = set(model.schema.feature_names)
    if not all(known.issuperset(item) for item in objects):
        # Fields the model does not know make the request invalid; the record validator
        # names every fault without a frame column for each stray key.
        _, _, problems = validate_records(objects, model.schema)
        raise _invalid(problems, len(objects))
    result = _score(model, codecs.instances_frame(objects), options, allow_extra=False)
    return json_predictions(result, model.schema.target, model.schema.feature_names, options)


def _predict_csv(call: Call, body: bytes) -> flask.Response:
    table = codecs.read_csv(body, call.settings.max_instances)
    call.rows = len(table)
    model = _model(call)
    options = parse_options(options_from_query(call.request.args))
    compiled = model.compiled
    if compiled is not None and not options.explain:
        added = _csv_clean_batch(model, compiled, table, options)
        if added is not None:
            return csv_response(codecs.encode_table(table, added), model.name, model.version)
    rows = table.frame()
    result = _score(model, rows, options, allow_extra=True)
    return csv_response(codecs.encode_csv(rows.join(result)), model.name, model.version)


def _csv_clean_batch(
    model: LoadedModel, compiled: CompiledModel, table: codecs.Table, options: Options
) -> dict[str, Any] | None:
    """Columns to append to a CSV of clean rows; None sends it the reference way."""
    from shared import columnar

    columns = columnar.clean_text_columns(table, model)
    if columns is None:
        return None
    check_available(model, options)
    values = columnar.predict_columns(model, compiled, columns)
    target = model.schema.target
    if options.interval is None:
        return {target: values}
    width = interval_half_width(model, options.interval)
    return {target: values, f"{target}_lower": values - width, f"{target}_upper": values + width}


def _bigquery(call: Call, document: Any) -> flask.Response:
    from shared import bigquery

    model = _model(call)
    calls = bigquery.decode_calls(document, model.schema.feature_names, call.settings.max_instances)
    call.rows = len(calls.rows) + len(calls.null_rows)
    call.log["bigquery_output"] = calls.output
    options = parse_options(calls.parameters)
    result = _score(model, calls.rows, options, allow_extra=False)
    replies = bigquery.encode_replies(
        result, calls, model.schema.target, model.schema.feature_names
    )
    return json_response(replies, model.name, model.version)


# --- KServe V1 -------------------------------------------------------------------------------


def _v1_status(call: Call) -> flask.Response:
    model = _model(call)
    return json_response({"name": model.name, "ready": True}, model.name, model.version)


def _v1_predict(call: Call) -> flask.Response:
    media_type(call.request, default="application/json")
    document = codecs.parse_json(read_body(call.request, call.settings.max_body_bytes))
    if not isinstance(document, dict) or "instances" not in document:
        raise BadRequest('a V1 request is {"instances": [...]}')
    return _predict_json(call, document)


# --- Open Inference Protocol (V2) ------------------------------------------------------------


def _v2_server(call: Call) -> flask.Response:
    return json_response({"name": SERVER_NAME, "version": "1", "extensions": []})


def _v2_live(call: Call) -> flask.Response:
    return json_response({"live": True})


def _v2_ready(call: Call) -> flask.Response:
    """Ready once the model is loaded; asking loads it, so a probe warms the instance."""
    try:
        model = _model(call)
    except ModelUnavailable as exc:
        response = json_response({"ready": False, "error": exc.message}, status=503)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return json_response({"name": model.name, "ready": True}, model.name, model.version)


def _v2_metadata(call: Call) -> flask.Response:
    from shared import open_inference

    model = _model(call)
    document = open_inference.model_metadata(model.schema, model.name, model.version)
    return json_response(document, model.name, model.version)


def _v2_infer(call: Call) -> flask.Response:
    from shared import open_inference

    if call.request.headers.get("Inference-Header-Content-Length") is not None:
        raise BadRequest(open_inference.BINARY_REFUSED)
    media_type(call.request, default="application/json")
    document = codecs.parse_json(read_body(call.request, call.settings.max_body_bytes))
    model = _model(call)
    request = open_inference.decode_infer(document, model.schema, call.settings.max_instances)
    call.rows = len(request.rows)
    options = parse_options(request.parameters)
    result = _score(model, request.rows, options, allow_extra=False)
    body = open_inference.encode_infer(
        result, model.name, model.version, request.outputs, request.request_id
    )
    return json_response(body, model.name, model.version)


# --- shared steps ----------------------------------------------------------------------------


def _model(call: Call) -> LoadedModel:
    model = runtime().store.get(call.model_name)
    call.version = model.version
    return model


def _score(
    model: LoadedModel, rows: pd.DataFrame, options: Options, *, allow_extra: bool
) -> pd.DataFrame:
    from shared.inference import predict
    from shared.preprocessing import validate

    validated = validate(rows, model.schema, allow_extra=allow_extra)
    if validated.problems:
        raise _invalid(validated.problems, len(rows))
    return predict(model, validated.features, options)


def _invalid(problems: tuple[Problem, ...], rows: int) -> InvalidInput:
    invalid = len({p.row for p in problems if p.row is not None}) or "all"
    return InvalidInput(f"{invalid} of {rows} rows are invalid", problems)
