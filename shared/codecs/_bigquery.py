"""BigQuery remote functions: `{"calls": [[...], ...]}` in, `{"replies": [...]}` out.

Each call holds the function's arguments in the model's feature order. A call with a NULL
argument gets a NULL reply, as SQL functions do; it is still a call of the batch, so faults are
counted and named by call, 0-based, as BigQuery shows them. `userDefinedContext` (set in CREATE
FUNCTION) chooses what each reply is:

| key | values | default |
| --- | --- | --- |
| output | prediction, lower, upper, interval, explain, all | prediction |
| interval_level | a level between 0 and 1, for lower, upper, interval and all | 0.9 |
| strict | "true": a call outside the training range fails the query, naming it | "false" |

prediction, lower and upper reply with a number (RETURNS FLOAT64; a bound withheld outside the
training range is NULL); interval, explain and all with a JSON object (RETURNS JSON) that holds
`outside_training_range`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from shared.errors import BadRequest, InvalidInput, PayloadTooLarge, Problem
from shared.predict import DEFAULT_LEVEL, Prediction, as_list, invalid_rows
from shared.validation import Rows

OUTPUTS = ("prediction", "lower", "upper", "interval", "explain", "all")
# What a BigQuery user can change when a batch is too large: the calls in one request. The HTTP
# edge adds it to every 413 in BigQuery's shape.
SMALLER_BATCHES = "lower max_batching_rows in CREATE FUNCTION"


@dataclass(frozen=True)
class Calls:
    """The calls without a NULL argument as `rows`; `kept[i]` is the call that row i came from."""

    rows: Rows
    kept: list[int]
    total: int
    output: str
    parameters: Mapping[str, Any]
    asked_by: Mapping[str, str]  # by option, the userDefinedContext key that set it

    def refusal(self, problems: tuple[Problem, ...]) -> InvalidInput:
        """The error for faulty rows, counted and named by call: how many of the batch's calls
        are at fault (NULL calls count as calls, never as faults), and each by its call."""
        by_call = tuple(
            problem if problem.row is None else replace(problem, row=self.kept[problem.row])
            for problem in problems
        )
        return invalid_rows(by_call, self.total)


def is_bigquery_batch(document: object) -> bool:
    """A BigQuery remote-function request: an object with "calls", and without "instances"
    (which would make it a JSON batch)."""
    return isinstance(document, dict) and "calls" in document and "instances" not in document


def decode_calls(document: Mapping[str, Any], features: Sequence[str], max_instances: int) -> Calls:
    calls = document.get("calls")
    if not isinstance(calls, list):
        raise BadRequest('"calls" must be a list of argument lists')
    if len(calls) > max_instances:
        raise PayloadTooLarge(
            f"at most {max_instances} calls are accepted per request; this batch has {len(calls)}"
        )
    wrong = [
        Problem(row, None, f"expected {len(features)} arguments ({', '.join(features)})")
        for row, call in enumerate(calls)
        if not isinstance(call, list) or len(call) != len(features)
    ]
    if wrong:
        raise InvalidInput("calls do not match the function's arguments", tuple(wrong))
    kept = [row for row, call in enumerate(calls) if all(v is not None for v in call)]
    columns = {name: [calls[row][at] for row in kept] for at, name in enumerate(features)}
    context = document.get("userDefinedContext")
    context = context if isinstance(context, dict) else {}
    output, parameters = _options(context)
    rows = Rows.of_columns(columns, len(kept))
    return Calls(rows, kept, len(calls), output, parameters, _asked_by(context))


def encode_replies(prediction: Prediction, calls: Calls) -> dict[str, Any]:
    """One reply per call: NULL for a call with a NULL argument, else the output chosen."""
    replies: list[Any] = [None] * calls.total
    for row, reply in zip(prediction.positions, _replies(prediction, calls.output), strict=True):
        replies[calls.kept[row]] = reply
    return {"replies": replies}


def _asked_by(context: Mapping[str, Any]) -> dict[str, str]:
    """A fault in an option is reported under the userDefinedContext key a BigQuery user set."""
    level = "interval_level" if "interval_level" in context else "output"
    return {
        "interval": f"userDefinedContext.{level}",
        "explain": "userDefinedContext.output",
        "strict": "userDefinedContext.strict",
    }


def _options(context: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
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
    if "strict" in context:
        strict = str(context["strict"]).strip().lower()
        parameters["strict"] = {"true": True, "false": False}.get(strict, context["strict"])
    return output, parameters


def _replies(prediction: Prediction, output: str) -> list[Any]:
    if output == "prediction":
        return as_list(prediction.values)
    if output in ("lower", "upper") and prediction.interval is not None:
        return as_list(getattr(prediction.interval, output))
    return prediction.objects()
