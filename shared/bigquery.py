"""BigQuery remote functions: `{"calls": [[...], ...]}` in, `{"replies": [...]}` out.

Each call holds the function's arguments in the model's feature order. A call with a NULL
argument gets a NULL reply, as SQL functions do. `userDefinedContext` (set in CREATE FUNCTION)
chooses what each reply is:

| key | values | default |
| --- | --- | --- |
| output | prediction, lower, upper, interval, explain, all | prediction |
| interval_level | a level between 0 and 1, for lower, upper, interval and all | 0.9 |

prediction, lower and upper reply with a number (RETURNS FLOAT64); interval, explain and all
with a JSON object (RETURNS JSON).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from shared.errors import BadRequest, InvalidInput, PayloadTooLarge, Problem

OUTPUTS = ("prediction", "lower", "upper", "interval", "explain", "all")
DEFAULT_LEVEL = 0.9


@dataclass(frozen=True)
class Calls:
    rows: pd.DataFrame
    null_rows: frozenset[int]
    output: str
    parameters: Mapping[str, Any]


def decode_calls(document: Mapping[str, Any], features: Sequence[str], max_instances: int) -> Calls:
    calls = document.get("calls")
    if not isinstance(calls, list):
        raise BadRequest('"calls" must be a list of argument lists')
    if len(calls) > max_instances:
        raise PayloadTooLarge(
            f"at most {max_instances} calls are accepted per request; "
            "lower max_batching_rows in CREATE FUNCTION"
        )
    wrong = [
        Problem(row, None, f"expected {len(features)} arguments ({', '.join(features)})")
        for row, call in enumerate(calls)
        if not isinstance(call, list) or len(call) != len(features)
    ]
    if wrong:
        raise InvalidInput("calls do not match the function's arguments", tuple(wrong))
    null_rows = frozenset(row for row, call in enumerate(calls) if any(v is None for v in call))
    columns = {name: [call[position] for call in calls] for position, name in enumerate(features)}
    rows = pd.DataFrame(columns, index=pd.RangeIndex(len(calls)), dtype=object)
    output, parameters = _options(document.get("userDefinedContext"))
    return Calls(rows.drop(index=list(null_rows)), null_rows, output, parameters)


def encode_replies(
    result: pd.DataFrame, calls: Calls, target: str, features: Sequence[str]
) -> dict[str, Any]:
    total = len(calls.rows) + len(calls.null_rows)
    replies: list[Any] = [None] * total
    records: list[dict[str, Any]] = result.to_dict(orient="records")  # type: ignore[assignment]
    for row, values in zip(result.index, records, strict=True):
        replies[int(row)] = _reply(values, calls.output, target, features, calls.parameters)
    return {"replies": replies}


def _options(context: object) -> tuple[str, dict[str, Any]]:
    context = context if isinstance(context, dict) else {}
    output = str(context.get("output", "prediction")).strip().lower()
    if output not in OUTPUTS:
        raise InvalidInput(
            "bad userDefinedContext",
            (Problem(None, "userDefinedContext.output", f"must be one of {', '.join(OUTPUTS)}"),),
        )
    parameters: dict[str, Any] = {}
    if output in ("lower", "upper", "interval", "all"):
        raw = context.get("interval_level", DEFAULT_LEVEL)
        raw = "null" if raw is None else raw  # refused below, as any level that is not a number
        try:
            parameters["interval"] = float(raw)
        except (TypeError, ValueError):
            parameters["interval"] = raw
    if output in ("explain", "all"):
        parameters["explain"] = True
    return output, parameters


def _reply(
    values: Mapping[str, Any],
    output: str,
    target: str,
    features: Sequence[str],
    parameters: Mapping[str, Any],
) -> Any:
    if output == "prediction":
        return values[target]
    if output in ("lower", "upper"):
        return values[f"{target}_{output}"]
    reply: dict[str, Any] = {target: values[target]}
    if "interval" in parameters:
        reply["interval"] = {
            "level": parameters["interval"],
            "lower": values[f"{target}_lower"],
            "upper": values[f"{target}_upper"],
        }
    if parameters.get("explain"):
        reply["base_value"] = values["base_value"]
        reply["contributions"] = {name: values[f"contribution_{name}"] for name in features}
    return reply
