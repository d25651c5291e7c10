"""Train a model honestly: clean with the serving validator, pick by cross-validation, report.

Rows are split once into fit / calibration / held-out (chronologically for the market series,
at random for customers). Candidates are compared by cross-validation on the fit rows; the
winner is refit on them, calibrated for conformal intervals on the calibration rows, and
measured on held-out rows it never saw, next to the seed's LinearRegression and a naive
baseline.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.base import RegressorMixin, clone
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.model_selection import KFold, TimeSeriesSplit
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models.compile import try_compile
from models.recipes import SEED, SEED_MODEL, Recipe
from shared.predict import LevelTooHigh, calibration_residuals, half_width
from shared.schema import CategoricalFeature, ModelSchema
from shared.validation import validate

CV_FOLDS = 5
CV_MAX_ROWS = 50_000
BACKGROUND_ROWS = 50
CALIBRATION_KEEP = 2_000
COVERAGE_LEVELS = (0.8, 0.9, 0.95)
OUTLIER_IQRS = 10.0

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Trained:
    artifact: bytes
    metadata: dict[str, Any]
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cleaned:
    features: pd.DataFrame
    target: pd.Series
    dropped: dict[str, int]


def clean(data: pd.DataFrame, schema: ModelSchema) -> Cleaned:
    """The rows serving would accept, with a usable target; every dropped row counted."""
    checked = validate(data, schema, allow_extra=True)
    dropped: dict[str, int] = {}
    rejected = checked.rejected_rows or (frozenset(range(len(data))) if checked.problems else ())
    for problem in checked.problems:
        key = f"{problem.field}: {problem.reason}"
        dropped[key] = dropped.get(key, 0) + 1
    if schema.target not in data.columns:
        raise ValueError(f"training data has no {schema.target!r} column")
    target = pd.to_numeric(data[schema.target], errors="coerce").astype(float)
    kept = target.index.difference(pd.Index(sorted(rejected)))
    finite = np.isfinite(target.loc[kept].to_numpy())
    dropped_target = int((~finite).sum())
    if dropped_target:
        dropped[f"{schema.target}: missing or not a number"] = dropped_target
    kept = kept[finite]
    median = target.loc[kept].median()
    iqr = target.loc[kept].quantile(0.75) - target.loc[kept].quantile(0.25)
    inlier = (target.loc[kept] - median).abs() <= OUTLIER_IQRS * max(float(iqr), 1e-12)
    if int((~inlier).sum()):
        dropped[f"{schema.target}: outlier (over {OUTLIER_IQRS:g} IQR from the median)"] = int(
            (~inlier).sum()
        )
    kept = kept[inlier.to_numpy()]
    return Cleaned(checked.features.loc[kept], target.loc[kept], dropped)


def split(rows: int, time_ordered: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions for fit (65%), calibration (15%) and held-out (20%) rows."""
    order = np.arange(rows) if time_ordered else np.random.default_rng(SEED).permutation(rows)
    fit_end, calibration_end = int(rows * 0.65), int(rows * 0.80)
    return order[:fit_end], order[fit_end:calibration_end], order[calibration_end:]


def train(
    recipe: Recipe,
    data: pd.DataFrame,
    version: str | None,
    created: datetime,
    progress: Progress = lambda message: None,
) -> Trained:
    """`version` None names it from the creation time and the artifact's hash."""
    # Everything on one core: predictable on a shared machine, and as fast there.
    with threadpool_limits(1):
        return _train(recipe, data, version, created, progress)


def _train(
    recipe: Recipe, data: pd.DataFrame, version: str | None, created: datetime, progress: Progress
) -> Trained:
    started = time.perf_counter()
    cleaned = clean(data, recipe.schema)
    rows = len(cleaned.features)
    if rows < 40:
        raise ValueError(f"only {rows} usable rows after cleaning; at least 40 are needed")
    progress(f"{recipe.name}: {len(data)} rows read, {rows} usable")
    fit, calibration, held_out = split(rows, recipe.time_ordered)
    features, target = (
        cleaned.features.reset_index(drop=True),
        cleaned.target.reset_index(drop=True),
    )
    x_fit, y_fit = features.iloc[fit], target.iloc[fit]
    cv_scores = cross_validate(recipe, x_fit, y_fit, progress)
    winner_name = min(cv_scores, key=lambda name: cv_scores[name]["rmse"])
    progress(f"{recipe.name}: {winner_name} wins cross-validation; refitting")
    fitted = {
        name: clone(model).fit(x_fit, y_fit)
        for name, model in recipe.candidates().items()
        if name in (winner_name, SEED_MODEL)
    }
    winner = fitted[winner_name]
    residuals = calibration_residuals(
        target.iloc[calibration].to_numpy(),
        winner.predict(features.iloc[calibration]),
        CALIBRATION_KEEP,
        SEED,
    )
    x_test, y_test = features.iloc[held_out], target.iloc[held_out].to_numpy()
    predicted = winner.predict(x_test)
    held_out_metrics = {
        "chosen": metrics(y_test, predicted),
        SEED_MODEL: metrics(y_test, fitted[SEED_MODEL].predict(x_test)),
        recipe.naive_name: metrics(y_test, recipe.naive(y_fit, x_test)),
    }
    coverages = {
        f"{level:g}": coverage(y_test, predicted, residuals, level) for level in COVERAGE_LEVELS
    }
    background = x_fit.sample(min(BACKGROUND_ROWS, len(x_fit)), random_state=SEED)
    artifact = _dump(winner)
    seconds = round(time.perf_counter() - started, 3)
    progress(f"{recipe.name}: trained in {seconds} s")
    metadata = {
        "name": recipe.name,
        "version": version or version_name(created, hashlib.sha256(artifact).hexdigest()),
        "created": created.isoformat(timespec="seconds"),
        "estimator": winner_name,
        "schema": recipe.schema.to_dict(),
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "metrics": {
            "held_out": held_out_metrics,
            "cross_validation": cv_scores,
            "interval_coverage": coverages,
        },
        "training": {
            "fingerprint": fingerprint(data),
            "rows_read": len(data),
            "rows_dropped": len(data) - rows,
            "dropped_reasons": cleaned.dropped,
            "rows_fit": len(fit),
            "rows_calibration": len(calibration),
            "rows_held_out": len(held_out),
            "split": "chronological" if recipe.time_ordered else "random",
            "ranges": _ranges(x_fit, recipe.schema),
        },
        "intervals": {"method": "split-conformal", "abs_residuals": residuals},
        "explanations": {
            "method": "exact Shapley values against a background sample",
            "background": _records(background),
        },
        "versions": library_versions(),
        "serving": try_compile(winner),
        "example_instance": _records(features.iloc[:1])[0],
    }
    return Trained(artifact, metadata, {"seconds": seconds})


def metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R2, MAE and RMSE of finite predictions, rounded as metadata.json and report.json keep them.

    Retraining's gates measure both models with this too, so their numbers are `train`'s.
    """
    return {
        "r2": round(float(r2_score(actual, predicted)), 6),
        "mae": round(float(mean_absolute_error(actual, predicted)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(actual, predicted))), 6),
    }


def coverage(
    actual: np.ndarray, predicted: np.ndarray, residuals: Sequence[float], level: float
) -> float | None:
    """Share of rows inside the interval; None where calibration is too small for the level."""
    try:
        width = half_width(residuals, level)
    except LevelTooHigh:
        return None
    return round(float(np.mean(np.abs(actual - predicted) <= width)), 4)


def cross_validate(
    recipe: Recipe, features: pd.DataFrame, target: pd.Series, progress: Progress
) -> dict[str, dict[str, float]]:
    if len(features) > CV_MAX_ROWS:  # selection needs a fair comparison, not every row
        keep = np.sort(
            np.random.default_rng(SEED).choice(len(features), CV_MAX_ROWS, replace=False)
        )
        features, target = features.iloc[keep], target.iloc[keep]
    folds = (
        TimeSeriesSplit(CV_FOLDS)
        if recipe.time_ordered
        else KFold(CV_FOLDS, shuffle=True, random_state=SEED)
    )
    scores: dict[str, dict[str, float]] = {}
    for name, model in recipe.candidates().items():
        errors = []
        for fold, (train_rows, test_rows) in enumerate(folds.split(features), start=1):
            fitted: RegressorMixin = clone(model).fit(
                features.iloc[train_rows], target.iloc[train_rows]
            )
            predicted = fitted.predict(features.iloc[test_rows])
            errors.append(float(np.sqrt(mean_squared_error(target.iloc[test_rows], predicted))))
            progress(f"{recipe.name}: {name} fold {fold}/{CV_FOLDS} rmse {errors[-1]:.3f}")
        scores[name] = {
            "rmse": round(float(np.mean(errors)), 6),
            "rmse_std": round(float(np.std(errors)), 6),
        }
    return scores


def version_name(created: datetime, sha256: str) -> str:
    """Sortable by time, and distinct for distinct artifacts made in the same second."""
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%SZ}-{sha256[:8]}"


def creation_time(environ: Mapping[str, str] | None = None) -> datetime:
    """Now, or SOURCE_DATE_EPOCH when set, so a rebuild can reproduce the same metadata."""
    epoch = (os.environ if environ is None else environ).get("SOURCE_DATE_EPOCH")
    if epoch:
        return datetime.fromtimestamp(int(epoch), UTC)
    return datetime.now(UTC).replace(microsecond=0)


def library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


def fingerprint(data: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(data.astype(str), index=False).to_numpy()
    return "sha256:" + hashlib.sha256(hashed.tobytes()).hexdigest()


def _dump(model: Pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def _ranges(features: pd.DataFrame, schema: ModelSchema) -> dict[str, Any]:
    ranges: dict[str, Any] = {}
    for feature in schema.features:
        column = features[feature.name]
        if isinstance(feature, CategoricalFeature):
            ranges[feature.name] = {str(k): int(v) for k, v in column.value_counts().items()}
        else:
            ranges[feature.name] = {"min": float(column.min()), "max": float(column.max())}
    return ranges


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            str(name): float(value) if isinstance(value, int | float | np.number) else str(value)
            for name, value in row.items()
        }
        for _, row in frame.iterrows()
    ]
