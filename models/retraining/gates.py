"""The gates a challenger must pass, what they demand, and the decision.

Both models are measured on the same evaluation rows with training's own metric functions
(`models.training.metrics`, `models.calibrating.coverage`, `models.groups`), so a report's
numbers mean what metadata.json's do;
every gate is evaluated and reported with its numbers, even when one has failed. Nothing here
talks to storage or trains.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from models.calibrating import coverage
from models.training import metrics
from shared.settings import Settings

COVERAGE_LEVEL = 0.9
FAILED_GATES = "not promoted: failed"


@dataclass(frozen=True)
class Policy:
    """What the gates demand and how much one run may take, from the settings."""

    min_improvement: float
    coverage_tolerance: float
    join_current: bool
    max_rows: int
    claim_seconds: float
    coverage_level: float = COVERAGE_LEVEL
    group_coverage_tolerance: float = 0.05
    exclude_features: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            min_improvement=settings.retrain_min_improvement,
            coverage_tolerance=settings.retrain_coverage_tolerance,
            join_current=settings.retrain_join_current,
            max_rows=settings.retrain_max_rows,
            claim_seconds=settings.retrain_claim_seconds,
            group_coverage_tolerance=settings.retrain_group_coverage_tolerance,
            exclude_features=settings.retrain_exclude_features,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_improvement": self.min_improvement,
            "coverage_level": self.coverage_level,
            "coverage_tolerance": self.coverage_tolerance,
            "group_coverage_tolerance": self.group_coverage_tolerance,
            "exclude_features": list(self.exclude_features),
            "join_current": self.join_current,
            "max_rows": self.max_rows,
        }


# Measuring


@dataclass(frozen=True)
class Scores:
    """One model's predictions on the evaluation rows, measured."""

    rmse: float
    mae: float
    r2: float
    non_finite: int  # predictions that are NaN or infinite
    coverage: float | None  # share of rows inside the interval; None: the model has none
    worst_group: Mapping[str, Any] | None = None  # the decile or category covered least

    def to_dict(self) -> dict[str, Any]:
        return {
            "rmse": _finite_or_none(self.rmse),
            "mae": _finite_or_none(self.mae),
            "r2": _finite_or_none(self.r2),
            "non_finite_predictions": self.non_finite,
            f"interval_coverage_{COVERAGE_LEVEL:g}": self.coverage,
            "worst_group_coverage": self.worst_group,
        }


@dataclass(frozen=True)
class Evaluation:
    """Both models on the same rows: the challenger's held-out rows that came from the upload."""

    rows: int
    challenger: Scores
    current: Scores | None  # None: no usable current model


def scores(
    actual: np.ndarray,
    predicted: np.ndarray,
    interval: tuple[np.ndarray, np.ndarray] | None,
    worst_group: Mapping[str, Any] | None = None,
) -> Scores:
    """RMSE, MAE, R2 and interval coverage, as `train` measures its held-out rows; `interval`:
    the bounds serving gives each row (models.calibrating.bounds), None without intervals.

    Training never meets a non-finite error; here one makes the errors infinite (and R2 minus
    infinity), for the gates to see. So does a target without spread, for R2.
    """
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    non_finite = int((~np.isfinite(predicted)).sum())
    with np.errstate(all="ignore"):
        covered = coverage(actual, interval)
        if not np.isfinite(actual - predicted).all():
            return Scores(math.inf, math.inf, -math.inf, non_finite, covered)
        measured = metrics(actual, predicted)
        spread = float(np.sum((actual - actual.mean()) ** 2))
    return Scores(
        rmse=measured["rmse"],
        mae=measured["mae"],
        r2=measured["r2"] if spread > 0 else -math.inf,
        non_finite=non_finite,
        coverage=covered,
        worst_group=worst_group,
    )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# Gates and decision


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, **self.numbers}


def schema_gate(challenger: Mapping[str, Any], current: Mapping[str, Any] | None) -> Gate:
    if current is None:
        return Gate("schema", True, "no usable current model to compare with")
    differing = schema_differences(_as_json(challenger), _as_json(current))
    if not differing:
        return Gate("schema", True, "same features, ranges, categories and target")
    detail = (
        f"the schemas differ in {', '.join(differing)}: a request valid for one model may not "
        "be for the other"
    )
    return Gate("schema", False, detail, {"differing": differing})


def schema_differences(one: Any, other: Any) -> list[str]:
    """The features (by name), `target` or `feature order` in which two schema dicts differ."""
    if one == other:
        return []
    if not isinstance(one, dict) or not isinstance(other, dict):
        return ["schema"]
    features = [_by_name(one.get("features")), _by_name(other.get("features"))]
    names = sorted({*features[0], *features[1]})
    differing = [name for name in names if features[0].get(name) != features[1].get(name)]
    if not differing and list(features[0]) != list(features[1]):
        differing.append("feature order")
    if one.get("target") != other.get("target"):
        differing.append("target")
    return differing or ["schema"]


def _by_name(features: object) -> dict[str, Any]:
    if not isinstance(features, list):
        return {}
    return {str(item.get("name")): item for item in features if isinstance(item, dict)}


def finite_gate(challenger: Scores, rows: int) -> Gate:
    passed = challenger.non_finite == 0
    detail = (
        f"all {rows} predictions are finite"
        if passed
        else (f"{challenger.non_finite} of {rows} predictions are NaN or infinite")
    )
    return Gate("finite", passed, detail, {"non_finite": challenger.non_finite, "rows": rows})


def improvement_gate(challenger: Scores, current: Scores | None, margin: float) -> Gate:
    numbers: dict[str, Any] = {
        "challenger_rmse": _finite_or_none(challenger.rmse),
        "current_rmse": None if current is None else _finite_or_none(current.rmse),
        "required_improvement": margin,
    }
    if current is None:
        return Gate("improvement", True, "no usable current model to compare with", numbers)
    if not math.isfinite(challenger.rmse):
        return Gate("improvement", False, "the challenger's error is not finite", numbers)
    if not math.isfinite(current.rmse):
        return Gate("improvement", True, "the current model's error is not finite", numbers)
    improvement = (
        (current.rmse - challenger.rmse) / current.rmse
        if current.rmse > 0
        else (0.0 if challenger.rmse == 0 else -math.inf)
    )
    numbers["improvement"] = _finite_or_none(round(improvement, 6))
    passed = challenger.rmse <= current.rmse * (1 - margin)
    detail = (
        f"RMSE {challenger.rmse:g} against the current model's {current.rmse:g}: "
        f"{improvement:+.1%}, {'at least' if passed else 'less than'} the {margin:.1%} required"
    )
    return Gate("improvement", passed, detail, numbers)


def coverage_gate(
    challenger: Scores, level: float, tolerance: float, group_tolerance: float = 0.05
) -> Gate:
    """Marginal coverage within `tolerance` of the level, and the worst decile or category
    (of those with enough evaluation rows) no more than `group_tolerance` below it."""
    worst = challenger.worst_group
    numbers = {
        "level": level,
        "coverage": challenger.coverage,
        "tolerance": tolerance,
        "worst_group": worst,
        "group_tolerance": group_tolerance,
    }
    if challenger.coverage is None:
        return Gate("coverage", False, f"the challenger has no {level:.0%} intervals", numbers)
    marginal = abs(challenger.coverage - level) <= tolerance + 1e-12
    grouped = worst is None or worst["coverage"] >= level - group_tolerance - 1e-12
    detail = (
        f"{level:.0%} intervals cover {challenger.coverage:.1%} of the evaluation rows; "
        f"{level - tolerance:.1%} to {level + tolerance:.1%} is accepted"
    )
    if worst is None:
        detail += "; no decile or category has enough rows to check on its own"
    else:
        detail += (
            f"; the worst group, {worst['feature']} {worst['group']} ({worst['rows']} rows), "
            f"is covered {worst['coverage']:.1%}, at least {level - group_tolerance:.1%} "
            "is accepted"
        )
    return Gate("coverage", marginal and grouped, detail, numbers)


def gates(
    evaluation: Evaluation,
    challenger_schema: Mapping[str, Any],
    current_schema: Mapping[str, Any] | None,
    policy: Policy,
) -> list[Gate]:
    """Every gate, in a fixed order; all are evaluated even when one fails."""
    return [
        schema_gate(challenger_schema, current_schema),
        finite_gate(evaluation.challenger, evaluation.rows),
        improvement_gate(evaluation.challenger, evaluation.current, policy.min_improvement),
        coverage_gate(
            evaluation.challenger,
            policy.coverage_level,
            policy.coverage_tolerance,
            policy.group_coverage_tolerance,
        ),
    ]


def failed(checked: Sequence[Gate]) -> list[str]:
    return [gate.name for gate in checked if not gate.passed]


def gate_decision(checked: Sequence[Gate]) -> str | None:
    """The decision when a gate failed; None when the challenger may be promoted."""
    names = failed(checked)
    return f"{FAILED_GATES} {', '.join(names)}" if names else None


def _as_json(value: object) -> object:
    """Tuples and lists alike, as metadata.json stores them."""
    return orjson.loads(orjson.dumps(value))
