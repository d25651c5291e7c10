"""The reference rules applied row by row in plain Python, for rows given as mappings.

Small requests are checked here without numpy or pandas; so are JSON batches that are not
clean, where a frame would need a column for every stray key. It names the same rows, fields
and reasons as the frame validator (`_reference.validate`): property tests hold them together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shared.errors import Problem
from shared.schema import CategoricalFeature, ModelSchema, NumericFeature
from shared.validation._values import (
    ABSENT,
    category,
    in_range,
    meant_by,
    missing_reason,
    number,
    received,
    unknown_reason,
)


def validate_records(
    instances: Sequence[Mapping[str, Any]],
    schema: ModelSchema,
    *,
    allow_extra: bool = False,
    sent: Sequence[str] | None = None,
) -> tuple[list[dict[str, Any]], list[int], tuple[Problem, ...]]:
    """Canonical valid rows, their positions, and every fault (as `_reference.validate`).

    `sent`: every name the rows were sent with, when `instances` hold only the model's (rows
    whose extra names are ignored): a missing column then names the one that was meant."""
    keys = list(dict.fromkeys(key for item in instances for key in item))
    names = schema.feature_names
    known = set(names)
    extra = [] if allow_extra else [key for key in keys if key not in known]
    unknown = {key: unknown_reason(key, names) for key in extra}
    rank = {key: i for i, key in enumerate(unknown)}
    absent = [f.name for f in schema.features if f.name not in keys] if instances else []
    near = _near(absent, sent or keys, known, names) if allow_extra else {}
    lookups = {f.name: f.lookup() for f in schema.features if isinstance(f, CategoricalFeature)}
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems = [Problem(None, name, missing_reason(name, near)) for name in absent]
    for position, item in enumerate(instances):
        faults = [] if allow_extra else _unknown(position, item, unknown, rank)
        row: dict[str, Any] = {}
        for feature in schema.features:
            if feature.name in absent:
                continue
            raw = item.get(feature.name, ABSENT)
            value: float | str | None
            if isinstance(feature, NumericFeature):
                value, reason = number(raw)
                reason = reason or in_range(feature, value)
            else:
                value, reason = category(feature, lookups[feature.name], raw)
            if reason:
                faults.append(Problem(position, feature.name, reason, received(raw, value)))
            row[feature.name] = value
        problems += faults
        if not faults and not absent:
            rows.append(row)
            numbers.append(position)
    return rows, numbers, tuple(problems)


def _near(
    absent: Sequence[str], sent: Sequence[str], known: set[str], names: Sequence[str]
) -> dict[str, str]:
    """For each absent column, the name sent that was probably meant to be it."""
    return meant_by((name for name in sent if name not in known), names) if absent else {}


def _unknown(
    position: int, item: Mapping[str, Any], reasons: Mapping[str, str], rank: Mapping[str, int]
) -> list[Problem]:
    """Keys the model does not know, in the order they were first seen (the frame's order)."""
    extra = sorted((key for key in item if key in reasons), key=rank.__getitem__)
    return [Problem(position, key, reasons[key]) for key in extra]
