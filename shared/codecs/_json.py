"""JSON bodies in (KServe V1 / Vertex `{"instances": [...], "parameters": {...}}`), answers out.

A bare object is one instance; with the model's feature names, an instance may also be a list
of values in that order (KServe V1 style).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson

from shared.errors import BadRequest, InvalidInput, PayloadTooLarge, Problem
from shared.predict import OUTSIDE, Prediction
from shared.validation import Rows


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


def envelope(document: object, max_instances: int) -> Envelope:
    if not isinstance(document, dict):
        raise BadRequest('body must be a JSON object: {"instances": [...]} or one instance')
    if "instances" in document:
        instances, parameters = document["instances"], document.get("parameters", {})
        unexpected = sorted(set(document) - {"instances", "parameters"})
        if unexpected:
            raise BadRequest(f"unexpected top-level keys: {', '.join(unexpected)}")
    else:
        instances, parameters = [document], {}
    if not isinstance(instances, list):
        raise BadRequest('"instances" must be a list of objects')
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be an object')
    check_count(len(instances), max_instances)
    return Envelope(instances, parameters)


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


def check_count(count: int, max_instances: int) -> None:
    if count > max_instances:
        raise PayloadTooLarge(f"at most {max_instances} instances are accepted per request")


def _as_object(item: object, features: Sequence[str]) -> object:
    if isinstance(item, list) and len(item) == len(features):
        return dict(zip(features, item, strict=True))
    return item


def _shape_reason(item: object, features: Sequence[str] | None) -> str:
    if features is None:
        return "must be a JSON object"
    return f"must be a JSON object or a list of {len(features)} values ({', '.join(features)})"


def _json_error(exc: orjson.JSONDecodeError) -> str:
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
