"""JSON bodies in (KServe V1 / Vertex `{"instances": [...], "parameters": {...}}`), answers out.

A bare object is one instance; with the model's feature names, an instance may also be a list
of values in that order (KServe V1 style). KServe V1 also takes the rows under "inputs"
(`V1_ROWS_KEYS`, `v1_rows_key`); the function's own URL takes "instances" only.

Two ways in. The general one (`parse_json`, `envelope`, `instance_rows`) takes any body and
names every fault. `decode_instances` takes only the common large batch, objects with exactly
the model's fields, numbers as numbers and categories as strings, and decodes it straight into
columns, without a dict per row; for anything else it gives None, and the body goes the general
way, which answers it as it always has.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson

from shared.errors import BadRequest, InvalidInput, PayloadTooLarge, Problem
from shared.predict import OUTSIDE, SMALL_ROWS, Prediction
from shared.schema import CategoricalFeature, ModelSchema
from shared.validation import Rows

if TYPE_CHECKING:
    import msgspec

TYPED_FROM_BYTES = 64 * 1024
"""Smaller bodies go the general way: it costs them at most a few milliseconds, and they never
import msgspec (tens of milliseconds at a cold start)."""
ROWS_KEYS = ("instances",)
V1_ROWS_KEYS = ("instances", "inputs")
"""KServe V1: `{"inputs": [...]}` is `{"instances": [...]}`, one or the other."""
V1_SHAPE = 'a V1 request is {"instances": [...]} or {"inputs": [...]}'


def parse_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {_json_error(exc)}") from exc


@dataclass(frozen=True)
class Envelope:
    """`{"instances": [...], "parameters": {...}}`, or one bare instance."""

    instances: list[object]
    parameters: Mapping[str, Any]


def envelope(document: object, max_instances: int, key: str = "instances") -> Envelope:
    """The rows under `key` (a KServe V1 body's may be "inputs"), or one bare instance."""
    if not isinstance(document, dict):
        raise BadRequest('body must be a JSON object: {"instances": [...]} or one instance')
    if key in document:
        instances, parameters = document[key], document.get("parameters", {})
        unexpected = sorted(set(document) - {key, "parameters"})
        if unexpected:
            raise BadRequest(f"unexpected top-level keys: {', '.join(unexpected)}")
    else:
        instances, parameters = [document], {}
    if not isinstance(instances, list):
        raise BadRequest(f'"{key}" must be a list of objects')
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be an object')
    check_count(len(instances), max_instances, exact=True)
    return Envelope(instances, parameters)


def v1_rows_key(document: object) -> str:
    """Which key holds a KServe V1 body's rows: "instances", or "inputs", never both."""
    given = [key for key in V1_ROWS_KEYS if isinstance(document, dict) and key in document]
    if len(given) > 1:
        raise BadRequest('a V1 request has "instances" or "inputs", not both')
    if not given:
        raise BadRequest(V1_SHAPE)
    return given[0]


def instance_rows(instances: Sequence[object], features: Sequence[str] | None = None) -> Rows:
    """The instances as rows; lists in feature order become objects when `features` is given."""
    kinds = set(map(type, instances))
    if kinds <= {dict}:  # the common request
        return Rows.of_records(cast(Sequence[dict[str, object]], instances))
    if features is not None and list in kinds:
        instances = [_as_object(item, features) for item in instances]
    wrong = [
        Problem(row, None, _shape_reason(item, features))
        for row, item in enumerate(instances)
        if not isinstance(item, dict)
    ]
    if wrong:
        raise InvalidInput("every instance must be a JSON object", tuple(wrong))
    return Rows.of_records(cast(Sequence[dict[str, object]], instances))


@dataclass(frozen=True)
class Batch:
    """A batch decoded straight into columns, and the request's parameters."""

    rows: Rows
    parameters: Mapping[str, Any]


def decode_instances(
    body: bytes, schema: ModelSchema, max_instances: int, keys: Sequence[str] = ROWS_KEYS
) -> Batch | None:
    """The common large batch as columns (numbers as float arrays, categories as strings);
    None for any other body, which the general way then decodes and answers.

    Every row an object with exactly the schema's fields, numbers as JSON numbers, categories
    as strings, under one of `keys` (V1_ROWS_KEYS for KServe V1) and no other: then the columns
    hold what the general way's records hold (a JSON integer is the same float either way),
    and the validators see the same values. Raises PayloadTooLarge as `envelope` does.
    """
    if len(body) < TYPED_FROM_BYTES:
        return None
    import msgspec  # large batches only

    try:
        decoded = _typed_decoder(_typed_fields(schema)).decode(body)
    except msgspec.DecodeError:  # any other body, or a fault: the general way names it
        return None
    given = {key: getattr(decoded, key) for key in V1_ROWS_KEYS}
    given = {key: rows for key, rows in given.items() if rows is not msgspec.UNSET}
    if len(given) != 1 or not set(given) <= set(keys):
        return None
    (instances,) = given.values()
    parameters = _typed_parameters(decoded.parameters)
    check_count(len(instances), max_instances, exact=True)
    if parameters is None or len(instances) <= SMALL_ROWS:
        return None
    columns = _typed_columns(instances, schema)
    return Batch(Rows.of_columns(columns, len(instances)), parameters)


def json_answer(prediction: Prediction) -> dict[str, Any]:
    """`predictions`: bare numbers without extras (KServe V1 / Vertex clients read them as is),
    beside them `outside_training_range` (per row, the features outside it); with extras, one
    object per row, which carries its own `outside_training_range`."""
    if not prediction.options.extras:
        names = prediction.outside.names() if prediction.outside else [[]] * len(prediction)
        return {"predictions": prediction.values, OUTSIDE: names}
    return {"predictions": prediction.objects()}


def encode_json(document: object) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def check_count(count: int, max_instances: int, *, exact: bool = False) -> None:
    """PayloadTooLarge past `max_instances`. `exact`: `count` is every row the request holds,
    and the message says it; otherwise it is the rows read so far (a reader that stops at the
    limit: counting the rest would cost the parse the limit saves), and the message is silent.
    Where larger batches go depends on the caller's protocol: the HTTP edge adds it."""
    if count <= max_instances:
        return
    sent = f"; this one has {count}" if exact else ""
    raise PayloadTooLarge(f"at most {max_instances} instances are accepted per request{sent}")


def _as_object(item: object, features: Sequence[str]) -> object:
    if isinstance(item, list) and len(item) == len(features):
        return dict(zip(features, item, strict=True))
    return item


def _shape_reason(item: object, features: Sequence[str] | None) -> str:
    if features is None:
        return "must be a JSON object"
    return f"must be a JSON object or a list of {len(features)} values ({', '.join(features)})"


def _typed_fields(schema: ModelSchema) -> tuple[tuple[str, bool], ...]:
    """What the typed decoder depends on: each field's name, and whether it is a category."""
    return tuple((f.name, isinstance(f, CategoricalFeature)) for f in schema.features)


@functools.lru_cache(maxsize=16)  # its own lock; threads racing on a new schema make equal ones
def _typed_decoder(fields: tuple[tuple[str, bool], ...]) -> msgspec.json.Decoder[Any]:
    """A decoder for `{"instances": [...], "parameters": ...}` (or "inputs", KServe V1's other
    name; UNSET when absent) with exactly these fields in every instance, all required;
    numbers as floats (msgspec refuses bools, NaN and numbers that overflow, as the general
    way does), categories as strings. `parameters` is kept as raw text and read by orjson, as
    the general way reads it."""
    import msgspec

    row = msgspec.defstruct(
        "Instance",
        [(name, str if categorical else float) for name, categorical in fields],
        forbid_unknown_fields=True,
        gc=False,  # 100,000 rows the garbage collector need not walk
    )
    rows = list[row] | msgspec.UnsetType  # type: ignore[valid-type]
    envelope = msgspec.defstruct(
        "Envelope",
        [
            *((key, rows, msgspec.UNSET) for key in V1_ROWS_KEYS),
            ("parameters", msgspec.Raw, msgspec.Raw()),
        ],
        forbid_unknown_fields=True,
    )
    return msgspec.json.Decoder(envelope)


def _typed_parameters(raw: msgspec.Raw) -> Mapping[str, Any] | None:
    """`parameters` as the general way reads them (absent or null: none); None when orjson
    refuses them or they are not an object (the general way then names the fault)."""
    text = bytes(raw)
    try:
        parameters = orjson.loads(text) if text else None
    except orjson.JSONDecodeError:
        return None
    if parameters is None:
        return {}
    return parameters if isinstance(parameters, dict) else None


def _typed_columns(instances: Sequence[Any], schema: ModelSchema) -> dict[str, Any]:
    import numpy as np  # large batches only

    columns: dict[str, Any] = {}
    for feature in schema.features:
        values = list(map(operator.attrgetter(feature.name), instances))
        categorical = isinstance(feature, CategoricalFeature)
        columns[feature.name] = values if categorical else np.array(values, dtype=float)
    return columns


def _json_error(exc: orjson.JSONDecodeError) -> str:
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
