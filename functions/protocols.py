"""One handler per path: decode the body, predict, encode the answer, a few lines each.

Every prediction, whatever its protocol, is made by `shared.predict.predict`; each handler only
turns its wire format into rows and the prediction back into its wire format. Handlers import
nothing that loads pandas, numpy or scikit-learn, so a function starts, and answers small
requests, without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.http_io import (
    Call,
    Reply,
    Style,
    csv_reply,
    json_reply,
    media_type,
    require_json,
    runtime,
)
from shared import codecs
from shared.errors import BadRequest, ModelUnavailable
from shared.predict import (
    Options,
    Prediction,
    invalid_rows,
    options_for_outputs,
    options_from_query,
    output_columns,
    parse_options,
)
from shared.predict import predict as predict_rows
from shared.store import LoadedModel
from shared.validation import Rows

SERVER_NAME = "marketcast"
NOT_A_BATCH = (
    'a BigQuery remote-function request is {"calls": [[...], ...]}, without "instances"; '
    "other predictions go to the function's own URL"
)


# --- the function's own URL ------------------------------------------------------------------


def root(call: Call) -> Reply:
    if call.request.method in ("GET", "HEAD"):
        model = call.model()
        card = codecs.model_card(model, call.function_name)
        return json_reply(card, model.name, model.version)
    kind = media_type(call.request)
    body = call.request.body
    if kind == "text/csv":
        return _predict_csv(call, body)
    batch = _typed_batch(call)
    if batch is not None:
        return _answer_json(call, batch.rows, batch.parameters)
    document = codecs.parse_json(body)
    if codecs.is_bigquery_batch(document):  # registered at the root: known by its body only
        call.style = Style.BIGQUERY
        return _bigquery(call, document)
    return _predict_json(call, document)


def _typed_batch(call: Call, keys: tuple[str, ...] = ("instances",)) -> codecs.Batch | None:
    """A large batch decoded straight into columns, when the model is in memory already (a
    body the general way refuses is then refused before any model load, as a small one is)."""
    loaded = runtime().store.loaded(call.model_name)
    if loaded is None:
        return None
    body, limit = call.request.body, call.settings.max_instances
    return codecs.decode_instances(body, loaded.schema, limit, keys)


def _predict_json(call: Call, document: object, key: str = "instances") -> Reply:
    parsed = codecs.envelope(document, call.settings.max_instances, key)
    call.rows = len(parsed.instances)
    model = call.model()
    rows = codecs.instance_rows(parsed.instances, model.schema.feature_names)
    return _answer_json(call, rows, parsed.parameters, model)


def _answer_json(
    call: Call, rows: Rows, parameters: Mapping[str, Any], model: LoadedModel | None = None
) -> Reply:
    call.rows = rows.count
    model = model or call.model()
    prediction = _predict(model, rows, parse_options(parameters))
    answer = {
        **codecs.json_answer(prediction),
        "model": {"name": model.name, "version": model.version},
    }
    return json_reply(answer, model.name, model.version)


def _predict_csv(call: Call, body: bytes) -> Reply:
    table = codecs.read_csv(body, call.settings.max_instances)
    call.rows = len(table)
    model = call.model()
    options = parse_options(options_from_query(call.request.query))
    rows = table.rows(model.schema, output_columns(model.schema, options))
    prediction = predict_rows(model, rows, options)
    if prediction.problems:  # a CSV row is named by its line too
        raise invalid_rows(table.with_lines(prediction.problems), rows.count)
    answer = codecs.encode_table(table, prediction.columns())
    return csv_reply(answer, model.name, model.version)


def _bigquery(call: Call, document: Any) -> Reply:
    model = call.model()
    calls = codecs.decode_calls(document, model.schema.feature_names, call.settings.max_instances)
    call.rows = calls.total
    call.log["bigquery_output"] = calls.output
    options = parse_options(calls.parameters, calls.asked_by)
    prediction = predict_rows(model, calls.rows, options)
    if prediction.problems:
        raise calls.refusal(prediction.problems)
    return json_reply(codecs.encode_replies(prediction, calls), model.name, model.version)


# --- BigQuery remote functions ---------------------------------------------------------------


def bigquery(call: Call) -> Reply:
    """POST /bigquery: a BigQuery remote-function batch, and nothing else. The path set the
    style, so every answer here, an error before the body is parsed too, is BigQuery's."""
    require_json(call.request)
    document = codecs.parse_json(call.request.body)
    if not codecs.is_bigquery_batch(document):
        raise BadRequest(NOT_A_BATCH)
    return _bigquery(call, document)


# --- KServe V1 -------------------------------------------------------------------------------


def v1_models(call: Call) -> Reply:
    """The models served here: this function's one, named without loading it."""
    return json_reply({"models": [call.model_name]})


def v1_status(call: Call) -> Reply:
    model = call.model()
    return json_reply({"name": model.name, "ready": True}, model.name, model.version)


def v1_predict(call: Call) -> Reply:
    require_json(call.request)
    batch = _typed_batch(call, codecs.V1_ROWS_KEYS)  # only rows under one of the keys
    if batch is not None:
        return _answer_json(call, batch.rows, batch.parameters)
    document = codecs.parse_json(call.request.body)
    return _predict_json(call, document, codecs.v1_rows_key(document))


# --- Open Inference Protocol (V2) ------------------------------------------------------------


def v2_server(call: Call) -> Reply:
    return json_reply({"name": SERVER_NAME, "version": "1", "extensions": []})


def v2_live(call: Call) -> Reply:
    return json_reply({"live": True})


def v2_ready(call: Call) -> Reply:
    """Ready once the model is loaded; asking loads it, so a probe warms the instance."""
    try:
        model = call.model()
    except ModelUnavailable as exc:
        reply = json_reply({"ready": False, "error": exc.message}, status=503)
        reply.headers["Retry-After"] = str(exc.retry_after)
        return reply
    return json_reply({"name": model.name, "ready": True}, model.name, model.version)


def v2_metadata(call: Call) -> Reply:
    model = call.model()
    document = codecs.model_metadata(model.schema, model.name, model.version)
    return json_reply(document, model.name, model.version)


def v2_infer(call: Call) -> Reply:
    if call.request.headers.get("inference-header-content-length") is not None:
        raise BadRequest(codecs.BINARY_REFUSED)
    require_json(call.request)
    document = codecs.parse_json(call.request.body)
    model = call.model()
    request = codecs.decode_infer(document, model.schema, call.settings.max_instances)
    call.rows = request.rows.count
    options = parse_options(request.parameters)
    if request.outputs is not None:  # an output asked for by name brings its option
        options = options_for_outputs(model.schema, request.outputs, options)
    prediction = _predict(model, request.rows, options)
    body = codecs.encode_infer(
        prediction, model.name, model.version, request.outputs, request.request_id
    )
    return json_reply(body, model.name, model.version)


# --- shared steps ----------------------------------------------------------------------------


def _predict(model: LoadedModel, rows: Rows, options: Options) -> Prediction:
    """Every row predicted, or InvalidInput naming every fault (rows by position)."""
    prediction = predict_rows(model, rows, options)
    if prediction.problems:
        raise invalid_rows(prediction.problems, rows.count)
    return prediction
