"""Train a model honestly: clean with the serving validator, pick by cross-validation, report.

Rows are split once into fit / calibration / held-out (chronologically for the market series,
at random for customers); outliers are judged by a rule learned on the fit rows. Candidates
are compared by cross-validation on the fit rows; the winner is refit on them, its interval
scale learned there (models/calibrating.py) and its calibration scores taken on the
calibration rows. It is measured on held-out rows it never saw, with values and intervals as
serving gives them, next to the seed's LinearRegression and a naive baseline; per decile and
category (models/groups.py); and, for a time series, by a rolling-origin backtest
(models/forecasting.py). A forecaster is then refit on every row for publication.
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

from models.calibrating import bounds, coverage, fit_scale, mean_width, scales
from models.compile import try_compile
from models.forecasting import BACKTEST_ORIGINS, check_periods, period_label, rolling_backtest
from models.groups import conditional_coverage, exclusion_cost, fairness, worst_group
from models.recipes import OUT_OF_SCOPE, SEED, SEED_MODEL, Recipe
from shared.predict import LevelTooHigh, calibration_scores, half_width, in_domain
from shared.schema import CategoricalFeature, ModelSchema
from shared.validation import validate

CV_FOLDS = 5
CV_MAX_ROWS = 50_000
BACKGROUND_ROWS = 200
BACKGROUND_FROM = 50_000  # fit rows ranked by prediction to choose the background from
CALIBRATION_KEEP = 20_000  # enough scores that a 99% interval rests on 200 of them
COVERAGE_LEVELS = (0.8, 0.9, 0.95)
GROUP_LEVEL = 0.9  # the level the per-group tables are measured at
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


@dataclass(frozen=True)
class Split:
    """Positions of the cleaned rows each part uses; outliers by the fit rows' rule left out."""

    fit: np.ndarray
    calibration: np.ndarray
    held_out: np.ndarray
    outlier_rule: dict[str, Any]
    outliers: int

    @property
    def used(self) -> int:
        return len(self.fit) + len(self.calibration) + len(self.held_out)


OUTLIER_REASON = "target: outlier by the fit rows' rule"


def dropped_reasons(cleaned: Cleaned, parts: Split) -> dict[str, int]:
    """Every dropped row by reason: cleaning's, then the outlier rule's."""
    return {**cleaned.dropped, **({OUTLIER_REASON: parts.outliers} if parts.outliers else {})}


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
    usable = np.isfinite(target.loc[kept].to_numpy())
    if schema.target_minimum is not None:
        usable &= target.loc[kept].to_numpy() >= schema.target_minimum
    dropped_target = int((~usable).sum())
    if dropped_target:
        dropped[f"{schema.target}: missing, not a number or below its minimum"] = dropped_target
    kept = kept[usable]
    return Cleaned(checked.features.loc[kept], target.loc[kept], dropped)


def split(rows: int, time_ordered: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions for fit (65%), calibration (15%) and held-out (20%) rows."""
    order = np.arange(rows) if time_ordered else np.random.default_rng(SEED).permutation(rows)
    fit_end, calibration_end = int(rows * 0.65), int(rows * 0.80)
    return order[:fit_end], order[fit_end:calibration_end], order[calibration_end:]


def split_rows(cleaned: Cleaned, time_ordered: bool) -> Split:
    """`split`, then the outlier rule learned on the fit rows' targets applied to every part:
    held-out rows are judged by the fit rows' rule, never by their own."""
    fit, calibration, held_out = split(len(cleaned.target), time_ordered)
    target = cleaned.target.to_numpy(dtype=float)
    median = float(np.median(target[fit])) if len(fit) else 0.0
    iqr = float(np.subtract(*np.percentile(target[fit], [75, 25]))) if len(fit) else 0.0
    reach = OUTLIER_IQRS * max(iqr, 1e-12)
    inlier = np.abs(target - median) <= reach
    rule = {
        "learned_on": "fit rows",
        "rule": f"target within {OUTLIER_IQRS:g} IQR of the fit rows' median",
        "lower": round(median - reach, 6),
        "upper": round(median + reach, 6),
    }
    return Split(
        fit[inlier[fit]],
        calibration[inlier[calibration]],
        held_out[inlier[held_out]],
        rule,
        int((~inlier).sum()),
    )


def train(
    recipe: Recipe,
    data: pd.DataFrame,
    version: str | None,
    created: datetime,
    progress: Progress = lambda message: None,
    exclude: Sequence[str] = (),
) -> Trained:
    """`version` None names it from the creation time and the artifact's hash. `exclude`:
    features the model must not use (still accepted in requests, and still reported on)."""
    # Everything on one core: predictable on a shared machine, and as fast there.
    with threadpool_limits(1):
        return _train(recipe, data, version, created, progress, tuple(exclude))


def _train(
    recipe: Recipe,
    data: pd.DataFrame,
    version: str | None,
    created: datetime,
    progress: Progress,
    exclude: tuple[str, ...],
) -> Trained:
    started = time.perf_counter()
    _check_exclusions(recipe, exclude)
    if recipe.schema.time:
        check_periods(data, recipe.schema.time)
    cleaned = clean(data, recipe.schema)
    if len(cleaned.features) < 40:
        raise ValueError(
            f"only {len(cleaned.features)} usable rows after cleaning; at least 40 are needed"
        )
    parts = split_rows(cleaned, recipe.time_ordered)
    progress(f"{recipe.name}: {len(data)} rows read, {len(parts.fit)} to fit")
    rows = _Rows(cleaned.features.reset_index(drop=True), cleaned.target.reset_index(drop=True))
    x_fit, y_fit = rows.part(parts.fit)

    def candidates() -> dict[str, Pipeline]:
        return recipe.candidates(exclude)

    cv_scores = cross_validate(recipe.name, candidates, recipe.time_ordered, x_fit, y_fit, progress)
    winner_name = min(cv_scores, key=lambda name: cv_scores[name]["rmse"])
    progress(f"{recipe.name}: {winner_name} wins cross-validation; refitting")
    winner = clone(candidates()[winner_name]).fit(x_fit, y_fit)
    intervals, constant_width = _calibrate(recipe, winner, rows, parts, exclude)
    published, fitted_on = _published(recipe, winner, rows, parts)
    served = {  # what serving reads to flag rows and bound intervals, as the model will have it
        "schema": recipe.schema.to_dict(),
        "training": {"ranges": _ranges(fitted_on, recipe.schema)},
        "intervals": intervals,
    }
    measured = _held_out(recipe, winner_name, winner, rows, parts, served, exclude)
    background = _background(_at_most(x_fit, BACKGROUND_FROM), winner, BACKGROUND_ROWS)
    artifact = _dump(published)
    seconds = round(time.perf_counter() - started, 3)
    progress(f"{recipe.name}: trained in {seconds} s")
    sha256 = hashlib.sha256(artifact).hexdigest()
    metadata = {
        "name": recipe.name,
        "version": version or version_name(created, sha256),
        "created": created.isoformat(timespec="seconds"),
        "estimator": winner_name,
        "schema": served["schema"],
        "sha256": sha256,
        "metrics": {
            "held_out": measured["held_out"],
            "cross_validation": cv_scores,
            "backtest": _backtest(recipe, data, cleaned, winner) if recipe.schema.time else None,
            "interval_coverage": measured["interval_coverage"],
            "interval_width": {**measured["interval_width"], "one_width_for_all": constant_width},
            "conditional_coverage": measured["conditional_coverage"],
        },
        "fairness": measured["fairness"],
        "training": {
            "fingerprint": fingerprint(data),
            "rows_read": len(data),
            "rows_dropped": len(data) - parts.used,
            "dropped_reasons": dropped_reasons(cleaned, parts),
            "outlier_rule": parts.outlier_rule,
            "rows_fit": len(parts.fit),
            "rows_calibration": len(parts.calibration),
            "rows_held_out": len(parts.held_out),
            "split": "chronological" if recipe.time_ordered else "random",
            "periods": _periods(data, recipe.schema.time),
            "excluded_features": list(exclude),
            "published_fit_on": "all rows" if recipe.refit_on_all else "fit rows",
            "ranges": served["training"]["ranges"],
        },
        "intervals": intervals,
        "use": {
            "intended": recipe.intended_use,
            "out_of_scope": OUT_OF_SCOPE,
            "data": recipe.provenance,
        },
        "explanations": {
            "method": "exact Shapley values against a background sample",
            "background": _records(background),
        },
        "versions": library_versions(),
        "serving": try_compile(published),
        "example_instance": _records(rows.features.iloc[:1])[0],
    }
    return Trained(artifact, metadata, {"seconds": seconds})


@dataclass(frozen=True)
class _Rows:
    """The cleaned rows, numbered 0, 1, ... as the split's positions count them."""

    features: pd.DataFrame
    target: pd.Series

    def part(self, positions: np.ndarray) -> tuple[pd.DataFrame, pd.Series]:
        return self.features.iloc[positions], self.target.iloc[positions]


def _check_exclusions(recipe: Recipe, exclude: Sequence[str]) -> None:
    unknown = sorted(set(exclude) - set(recipe.schema.feature_names))
    if unknown:
        raise ValueError(f"cannot exclude {', '.join(unknown)}: not a feature of {recipe.name}")


def _calibrate(
    recipe: Recipe, winner: Pipeline, rows: _Rows, parts: Split, exclude: Sequence[str]
) -> tuple[dict[str, Any], float]:
    """The intervals' scale and calibration scores; and the mean width one width for every
    row would give, to measure them against."""
    x_fit, y_fit = rows.part(parts.fit)
    scale = (
        {"feature": recipe.scale_feature}
        if recipe.scale_feature
        else fit_scale(winner, recipe.scale_model(exclude), x_fit, y_fit, SEED)
    )
    x_cal, y_cal = rows.part(parts.calibration)
    predicted = in_domain(winner.predict(x_cal), recipe.schema.target_minimum)
    scores = calibration_scores(
        y_cal.to_numpy(),
        predicted,
        scales({"scores": [], "scale": scale}, x_cal),
        CALIBRATION_KEEP,
        SEED,
    )
    intervals = {"method": "normalised split-conformal", "scale": scale, "scores": scores}
    return intervals, _constant_width(y_cal, predicted)


def _published(
    recipe: Recipe, winner: Pipeline, rows: _Rows, parts: Split
) -> tuple[Pipeline, pd.DataFrame]:
    """The model to publish, and the features it was fit on: the winner, or for a forecaster
    the winner refit on every row, so that it knows the latest quarters too."""
    if not recipe.refit_on_all:
        return winner, rows.part(parts.fit)[0]
    every = np.sort(np.concatenate([parts.fit, parts.calibration, parts.held_out]))
    features, target = rows.part(every)
    return clone(winner).fit(features, target), features


def _held_out(
    recipe: Recipe,
    winner_name: str,
    winner: Pipeline,
    rows: _Rows,
    parts: Split,
    served: Mapping[str, Any],
    exclude: Sequence[str],
) -> dict[str, Any]:
    """Everything measured on the held-out rows, with values and intervals as served."""
    minimum = recipe.schema.target_minimum
    x_fit, y_fit = rows.part(parts.fit)
    x_test, y_test_series = rows.part(parts.held_out)
    y_test = y_test_series.to_numpy()
    predicted = in_domain(winner.predict(x_test), minimum)
    seed = clone(recipe.baseline(exclude)).fit(x_fit, y_fit)
    held_out = {
        "chosen": metrics(y_test, predicted),
        SEED_MODEL: metrics(y_test, in_domain(seed.predict(x_test), minimum)),
        recipe.naive_name: metrics(y_test, recipe.naive(y_fit, x_test)),
    }
    coverages = {
        f"{level:g}": coverage(y_test, bounds(served, x_test, predicted, level))
        for level in COVERAGE_LEVELS
    }
    interval = bounds(served, x_test, predicted, GROUP_LEVEL)
    lower, upper = interval if interval is not None else (None, None)
    conditional = None
    if interval is not None:
        table = conditional_coverage(x_test, recipe.schema, y_test, *interval)
        conditional = {"level": GROUP_LEVEL, **table, "worst": worst_group(table, GROUP_LEVEL)}
    cost = None
    if exclude:  # what leaving the features out costs: the same estimator with all of them
        with_all = clone(recipe.candidates(())[winner_name]).fit(x_fit, y_fit)
        cost = exclusion_cost(
            metrics(y_test, in_domain(with_all.predict(x_test), minimum)), held_out["chosen"]
        )
    return {
        "held_out": held_out,
        "interval_coverage": coverages,
        "interval_width": {"level": GROUP_LEVEL, "mean": mean_width(interval)},
        "conditional_coverage": conditional,
        "fairness": {
            **fairness(x_test, recipe.schema, y_test, predicted, lower, upper),
            "level": GROUP_LEVEL,
            "excluded_features": list(exclude),
            "exclusion_cost": cost,
        },
    }


def metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R2, MAE and RMSE of finite predictions, rounded as metadata.json and report.json keep them.

    Retraining's gates measure both models with this too, so their numbers are `train`'s.
    """
    return {
        "r2": round(float(r2_score(actual, predicted)), 6),
        "mae": round(float(mean_absolute_error(actual, predicted)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(actual, predicted))), 6),
    }


def cross_validate(
    name: str,
    candidates: Callable[[], Mapping[str, Pipeline]],
    time_ordered: bool,
    features: pd.DataFrame,
    target: pd.Series,
    progress: Progress,
) -> dict[str, dict[str, float]]:
    if len(features) > CV_MAX_ROWS:  # selection needs a fair comparison, not every row
        keep = np.sort(
            np.random.default_rng(SEED).choice(len(features), CV_MAX_ROWS, replace=False)
        )
        features, target = features.iloc[keep], target.iloc[keep]
    folds = (
        TimeSeriesSplit(CV_FOLDS)
        if time_ordered
        else KFold(CV_FOLDS, shuffle=True, random_state=SEED)
    )
    scores: dict[str, dict[str, float]] = {}
    for candidate, model in candidates().items():
        errors = []
        for fold, (train_rows, test_rows) in enumerate(folds.split(features), start=1):
            fitted: RegressorMixin = clone(model).fit(
                features.iloc[train_rows], target.iloc[train_rows]
            )
            predicted = fitted.predict(features.iloc[test_rows])
            errors.append(float(np.sqrt(mean_squared_error(target.iloc[test_rows], predicted))))
            progress(f"{name}: {candidate} fold {fold}/{CV_FOLDS} rmse {errors[-1]:.3f}")
        scores[candidate] = {
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


def _backtest(
    recipe: Recipe, data: pd.DataFrame, cleaned: Cleaned, winner: Pipeline
) -> dict[str, Any] | None:
    """The rolling-origin backtest of the winner's kind of model over the last quarters, or
    None when the history is too short for one."""
    if len(cleaned.features) < 2 * BACKTEST_ORIGINS:
        return None
    time = recipe.schema.time
    labels = [period_label(*(int(data.loc[i, c]) for c in time)) for i in cleaned.features.index]
    return rolling_backtest(
        cleaned.features.reset_index(drop=True),
        cleaned.target.reset_index(drop=True),
        labels,
        lambda: clone(winner),
        level=recipe.scale_feature or recipe.schema.feature_names[0],
    )


def _periods(data: pd.DataFrame, time: Sequence[str]) -> dict[str, Any] | None:
    if not time or not len(data):
        return None
    first, last = (period_label(*(int(data[c].iloc[i]) for c in time)) for i in (0, -1))
    return {"columns": list(time), "first": first, "last": last, "count": len(data)}


def _at_most(features: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A random `rows` of them (all when fewer), in their order."""
    if len(features) <= rows:
        return features
    keep = np.sort(np.random.default_rng(SEED).choice(len(features), rows, replace=False))
    return features.iloc[keep]


def _background(features: pd.DataFrame, model: Pipeline, rows: int) -> pd.DataFrame:
    """Rows at evenly spaced ranks of their prediction: the background's mean prediction (the
    explanations' base value) is then close to the mean prediction over all fit rows."""
    if len(features) <= rows:
        return features
    order = np.argsort(model.predict(features), kind="stable")
    ranks = ((np.arange(rows) + 0.5) * len(features) / rows).astype(int)
    return features.iloc[np.sort(order[ranks])]


def _constant_width(actual: pd.Series, predicted: np.ndarray) -> float:
    """The mean width plain split-conformal (one width for every row) would give at the
    group level: what the normalised intervals are measured against."""
    residuals = np.sort(np.abs(actual.to_numpy(dtype=float) - predicted))
    try:
        return round(2 * half_width(list(residuals), GROUP_LEVEL), 6)
    except LevelTooHigh:
        return float("nan")


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            str(name): float(value) if isinstance(value, int | float | np.number) else str(value)
            for name, value in row.items()
        }
        for _, row in frame.iterrows()
    ]
