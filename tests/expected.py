"""What an answer should hold beyond its value, worked out from metadata.json by the
definitions (docs: ARCHITECTURE.md, shared/predict/_intervals.py), independently of the
serving code: a test compares serving's answer with this one.

    interval   prediction -+ q * scale(row), q the ceil((n + 1) * level)-th smallest score;
               the lower bound raised to the target's minimum; none outside the training range
    outside    the features whose value lies outside what the fit rows held
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Row = Mapping[str, Any]


def score_quantile(metadata: Mapping[str, Any], level: float) -> float:
    intervals = metadata["intervals"]
    scores = sorted(intervals.get("scores") or intervals["abs_residuals"])
    return float(scores[math.ceil((len(scores) + 1) * level) - 1])


def scale(metadata: Mapping[str, Any], row: Row) -> float:
    """How wide the row's interval is relative to the score quantile."""
    spec = metadata["intervals"].get("scale") or {}
    if "feature" in spec:
        return float(row[spec["feature"]])
    if "form" not in spec:
        return 1.0
    form = spec["form"]
    assert form["estimator"]["kind"] == "linear", "the scale model is linear"
    x: list[float] = []
    for item in form["inputs"]:
        value = row[item["feature"]]
        if item["kind"] == "one_hot":
            x += [1.0 if value == category else 0.0 for category in item["categories"]]
        else:
            x.append((float(value) - item["mean"]) / item["scale"])
    linear = sum(c * v for c, v in zip(form["estimator"]["coef"], x, strict=True))
    return max(float(spec["floor"]), linear + form["estimator"]["intercept"])


def outside(metadata: Mapping[str, Any], row: Row) -> list[str]:
    """The features of a canonical row outside the training range, in schema order."""
    ranges = metadata["training"]["ranges"]
    names = []
    for feature in metadata["schema"]["features"]:
        seen = ranges[feature["name"]]
        value = row[feature["name"]]
        if feature["type"] == "category":
            if not seen.get(value):
                names.append(feature["name"])
        elif not seen["min"] <= float(value) <= seen["max"]:
            names.append(feature["name"])
    return names


def trained_range(metadata: Mapping[str, Any], feature: str) -> str:
    """What the fit rows held of a feature, as a fault names it."""
    seen = metadata["training"]["ranges"][feature]
    if "min" in seen:
        return f"training range {seen['min']:g} to {seen['max']:g}"
    return "categories seen in training: " + ", ".join(sorted(c for c, n in seen.items() if n))


def strict_reason(metadata: Mapping[str, Any], feature: str) -> str:
    """Why `strict` refuses a row's value of `feature`."""
    return f"outside the {trained_range(metadata, feature)} (strict)"


def interval(
    metadata: Mapping[str, Any], row: Row, value: float, level: float
) -> tuple[float, float] | None:
    """The row's bounds, or None where the interval is withheld."""
    if outside(metadata, row):
        return None
    width = score_quantile(metadata, level) * scale(metadata, row)
    minimum = metadata["schema"]["target"].get("minimum")
    lower = value - width
    return (lower if minimum is None else max(minimum, lower), value + width)


def intervals(
    metadata: Mapping[str, Any], rows: Sequence[Row], values: Sequence[float], level: float
) -> list[tuple[float, float] | None]:
    return [interval(metadata, row, v, level) for row, v in zip(rows, values, strict=True)]


def in_domain(metadata: Mapping[str, Any], value: float) -> float:
    minimum = metadata["schema"]["target"].get("minimum")
    return value if minimum is None else max(minimum, value)
