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
    MISSING_COLUMN,
    UNKNOWN_FIELD,
    category,
    in_range,
    number,
)


def validate_records(
    instances: Sequence[Mapping[str, Any]], schema: ModelSchema, *, allow_extra: bool = False
) -> tuple[list[dict[str, Any]], list[int], tuple[Problem, ...]]:
    """Canonical valid rows, their positions, and every fault (as `_reference.validate`)."""
    keys = list(dict.fromkeys(key for item in instances for key in item))
    known = set(schema.feature_names)
    rank = {key: i for i, key in enumerate(key for key in keys if key not in known)}
    absent = [f.name for f in schema.features if f.name not in keys] if instances else []
    lookups = {f.name: f.lookup() for f in schema.features if isinstance(f, CategoricalFeature)}
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[Problem] = [Problem(None, name, MISSING_COLUMN) for name in absent]
    for position, item in enumerate(instances):
        faults = [] if allow_extra else _unknown(position, item, known, rank)
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
                faults.append(Problem(position, feature.name, reason))
            row[feature.name] = value
        problems += faults
        if not faults and not absent:
            rows.append(row)
            numbers.append(position)
    return rows, numbers, tuple(problems)


def _unknown(
    position: int, item: Mapping[str, Any], known: set[str], rank: Mapping[str, int]
) -> list[Problem]:
    """Keys the model does not know, in the order they were first seen (the frame's order)."""
    extra = sorted((key for key in item if key not in known), key=rank.__getitem__)
    return [Problem(position, key, UNKNOWN_FIELD) for key in extra]
