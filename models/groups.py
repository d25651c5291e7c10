"""How a model does per group of rows, measured on held-out rows.

An interval can cover 90% of all rows and 75% of the oldest customers; an error that averages
out overall can sit on one category of customer. Training reports both per group, so that a
reader, and a gate, sees where the overall numbers hide a weak spot:

- `conditional_coverage`: interval coverage per group of every feature (the deciles of a
  number, the categories of a category), and `worst_group`, the checked group furthest under
  the level;
- `fairness`: per category of each categorical feature, the errors, the coverage, and how often
  the category reaches the top of the ranking by prediction (who is picked when only the
  highest predictions are acted on);
- `exclusion_cost`: what leaving features out (gender, say) costs in held-out error;
- `coverage_lines` and `fairness_lines`: those tables as text for the training summary.

Everything here computes; nothing reads or writes. Rows are matched by position: row i of the
features goes with element i of `actual`, `predicted`, `lower` and `upper`. Metrics are rounded
as `models.training.metrics` rounds them (6 decimals), shares and coverages to 4.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from shared.schema import CategoricalFeature, Feature, ModelSchema

METRIC_DIGITS = 6
SHARE_DIGITS = 4


def groups_of(features: pd.DataFrame, schema: ModelSchema, bins: int = 10) -> dict[str, pd.Series]:
    """Each row's group for every feature of the schema: an ordered categorical Series on the
    features' index, whose categories list every group in order, empty ones included.

    A number is cut at its quantiles over these rows, `bins` groups of about equal size; edges
    that coincide (many rows on one value) merge their bins, so a feature with few distinct
    values has fewer groups. Bins are closed on the right, as `pd.qcut` cuts them: "(25, 32]"
    holds 25 < x <= 32, and the first, "[18, 25]", holds its lower edge too. Edges are written
    with 6 significant digits, more where that would make two of them read the same.

    A category's groups are the schema's categories in its order, then any other value seen,
    sorted, so that no row disappears from the report. A missing value belongs to no group.
    """
    return {
        feature.name: _groups(features[feature.name], feature, bins) for feature in schema.features
    }


def _groups(column: pd.Series, feature: Feature, bins: int) -> pd.Series:
    if isinstance(feature, CategoricalFeature):
        return _category_groups(column, feature.categories)
    return _number_groups(column, bins)


def _category_groups(column: pd.Series, categories: tuple[str, ...]) -> pd.Series:
    text = column.astype("string")
    others = sorted(set(text.dropna()) - set(categories))
    groups = pd.Categorical(text, categories=[*categories, *others], ordered=True)
    return pd.Series(groups, index=column.index, name=column.name)


def _number_groups(column: pd.Series, bins: int) -> pd.Series:
    codes, edges = _quantile_bins(pd.to_numeric(column, errors="coerce").astype(float), bins)
    labels = pd.Index(_bin_labels(edges), dtype=object)
    groups = pd.Categorical.from_codes(codes, categories=labels, ordered=True)
    return pd.Series(groups, index=column.index, name=column.name)


def _quantile_bins(values: pd.Series, bins: int) -> tuple[np.ndarray, list[float]]:
    """Each value's bin number (-1 when missing) and the bins' edges."""
    if values.nunique() < 2:  # qcut needs two distinct edges; one value is one group
        codes = np.where(values.notna(), 0, -1)
        return codes, [float(values.min()), float(values.max())] if values.notna().any() else []
    cut, edges = pd.qcut(values, bins, labels=False, retbins=True, duplicates="drop")
    return cut.fillna(-1).astype(int).to_numpy(), [float(edge) for edge in edges]


def _bin_labels(edges: list[float]) -> list[str]:
    texts = _distinct_texts(edges)
    return [f"{'[' if i == 0 else '('}{texts[i]}, {texts[i + 1]}]" for i in range(len(texts) - 1)]


def _distinct_texts(edges: list[float]) -> list[str]:
    """Edges as short as they can be written while distinct edges still read differently."""
    for digits in range(6, 17):
        texts = [f"{edge:.{digits}g}" for edge in edges]
        if len(set(texts)) == len(set(edges)):
            return texts
    return [repr(edge) for edge in edges]  # 17 significant digits tell any two floats apart


def conditional_coverage(
    features: pd.DataFrame,
    schema: ModelSchema,
    actual: ArrayLike,
    lower: ArrayLike,
    upper: ArrayLike,
    min_rows: int = 200,
) -> dict[str, Any]:
    """Interval coverage per group of every feature (see `groups_of`), groups in their order.

    Overall coverage can meet its level while a group is far under it. Every group is listed,
    however small, so that a reader sees everything; "checked" says whether the group has
    `min_rows` measured rows, enough for a gate to hold its coverage to the level (at 200 rows
    a 90% coverage is known to about 2 points, one standard error). Rows whose lower or upper
    bound is NaN had their interval withheld: they are counted as "withheld" and left out of
    "coverage", which is None for a group with no measured row.
    """
    rows = len(features)
    inside, withheld = _interval_rows(actual, lower, upper, rows)
    table = {
        name: _coverage_by_group(groups, inside, withheld, min_rows)
        for name, groups in groups_of(features, schema).items()
    }
    return {"rows": rows, "withheld": int(withheld.sum()), "min_rows": min_rows, "features": table}


def _interval_rows(
    actual: ArrayLike, lower: ArrayLike, upper: ArrayLike, rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which rows fall inside their interval, and which had no interval."""
    truth, low, high = (
        _values(v, rows, n) for v, n in ((actual, "actual"), (lower, "lower"), (upper, "upper"))
    )
    withheld = np.isnan(low) | np.isnan(high)
    return (low <= truth) & (truth <= high) & ~withheld, withheld


def _values(values: ArrayLike, rows: int, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).reshape(-1)
    if len(array) != rows:
        raise ValueError(f"{name} has {len(array)} values for {rows} rows")
    return array


def _coverage_by_group(
    groups: pd.Series, inside: np.ndarray, withheld: np.ndarray, min_rows: int
) -> dict[str, dict[str, Any]]:
    codes = groups.cat.codes.to_numpy()
    table = {}
    for code, label in enumerate(groups.cat.categories):
        members = codes == code
        measured = int((members & ~withheld).sum())
        table[str(label)] = {
            "rows": int(members.sum()),
            "withheld": int((members & withheld).sum()),
            "coverage": _share(int((members & inside).sum()), measured),
            "checked": measured > 0 and measured >= min_rows,
        }
    return table


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, SHARE_DIGITS) if whole else None


def worst_group(table: Mapping[str, Any], level: float) -> dict[str, Any] | None:
    """The checked group whose coverage is furthest below `level`, the first of equals; None
    when no group is checked. "gap" is level - coverage: negative when every checked group
    reaches the level (the group returned is then the one closest to falling under it)."""
    checked = [
        {"feature": feature, "group": group, "rows": entry["rows"], "coverage": entry["coverage"]}
        for feature, groups in table["features"].items()
        for group, entry in groups.items()
        if entry["checked"]
    ]
    if not checked:
        return None
    worst = min(checked, key=lambda entry: entry["coverage"])
    return {**worst, "gap": round(level - worst["coverage"], SHARE_DIGITS)}


def fairness(
    features: pd.DataFrame,
    schema: ModelSchema,
    actual: ArrayLike,
    predicted: ArrayLike,
    lower: ArrayLike | None = None,
    upper: ArrayLike | None = None,
    top_share: float = 0.1,
) -> dict[str, Any]:
    """Errors, coverage and selection per category of each categorical feature.

    "mean_error" is the mean of predicted - actual: positive means the model over-predicts the
    category. "share_of_top" is the category's share of the `top_share` of rows with the highest
    predictions (ties go to the earlier row), and "top_ratio" that share over its share of all
    rows: 1 means picked as often as it occurs, 2 twice as often. "coverage" is measured as in
    `conditional_coverage`, and None for every category when no interval is given. Every
    category of the schema is listed, one with no rows with None for what it cannot have.
    """
    rows = len(features)
    truth, guess = _values(actual, rows, "actual"), _values(predicted, rows, "predicted")
    if (lower is None) != (upper is None):
        raise ValueError("give both interval bounds or neither")
    interval = None if lower is None or upper is None else _interval_rows(truth, lower, upper, rows)
    top_rows = _top_rows(rows, top_share)
    in_top = np.zeros(rows, dtype=bool)
    in_top[np.argsort(-guess, kind="stable")[:top_rows]] = True
    categorical = [f for f in schema.features if isinstance(f, CategoricalFeature)]
    groups = groups_of(
        features[[f.name for f in categorical]], ModelSchema(tuple(categorical), schema.target)
    )
    table = {
        name: {
            str(label): _category_report(
                truth, guess, interval, in_top, column.cat.codes.to_numpy() == code
            )
            for code, label in enumerate(column.cat.categories)
        }
        for name, column in groups.items()
    }
    return {"rows": rows, "top_share": top_share, "top_rows": top_rows, "features": table}


def _top_rows(rows: int, top_share: float) -> int:
    """How many rows the top `top_share` holds: at least the share, never a row short."""
    if not 0 < top_share <= 1:
        raise ValueError(f"top_share must be in (0, 1], not {top_share}")
    return math.ceil(round(top_share * rows, 9))  # round first: 0.07 * 100 is 7.000000000000001


def _category_report(
    actual: np.ndarray,
    predicted: np.ndarray,
    interval: tuple[np.ndarray, np.ndarray] | None,
    in_top: np.ndarray,
    members: np.ndarray,
) -> dict[str, Any]:
    rows, top_rows = int(members.sum()), int(in_top.sum())
    share_of_rows = rows / len(members) if len(members) else None
    share_of_top = int((members & in_top).sum()) / top_rows if top_rows else None
    return {
        "rows": rows,
        "share_of_rows": None if share_of_rows is None else round(share_of_rows, SHARE_DIGITS),
        **_errors(actual[members], predicted[members]),
        "coverage": None if interval is None else _covered(interval, members),
        "share_of_top": None if share_of_top is None else round(share_of_top, SHARE_DIGITS),
        "top_ratio": (
            round(share_of_top / share_of_rows, SHARE_DIGITS)
            if share_of_top is not None and share_of_rows
            else None
        ),
    }


def _errors(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    if not len(actual):
        return {"rmse": None, "mae": None, "mean_error": None}
    error = predicted - actual
    return {
        "rmse": round(float(np.sqrt(np.mean(error**2))), METRIC_DIGITS),
        "mae": round(float(np.mean(np.abs(error))), METRIC_DIGITS),
        "mean_error": round(float(np.mean(error)), METRIC_DIGITS),
    }


def _covered(interval: tuple[np.ndarray, np.ndarray], members: np.ndarray) -> float | None:
    inside, withheld = interval
    return _share(int((members & inside).sum()), int((members & ~withheld).sum()))


def exclusion_cost(
    with_metrics: Mapping[str, float], without_metrics: Mapping[str, float]
) -> dict[str, float | None]:
    """What leaving features out costs: held-out metrics of the same estimator trained with
    and without them. "rmse_change" is without - with, and "rmse_change_percent" that change
    relative to the RMSE with them (2 decimals; None when that RMSE is 0): positive means the
    model without the features is worse by that much."""
    rmse_with, rmse_without = float(with_metrics["rmse"]), float(without_metrics["rmse"])
    change = rmse_without - rmse_with
    return {
        "rmse_with": rmse_with,
        "rmse_without": rmse_without,
        "rmse_change": round(change, METRIC_DIGITS),
        "rmse_change_percent": round(100 * change / rmse_with, 2) if rmse_with else None,
        "mae_with": float(with_metrics["mae"]),
        "mae_without": float(without_metrics["mae"]),
    }


def coverage_lines(table: Mapping[str, Any], level: float) -> list[str]:
    """`conditional_coverage` as a fixed-width table, with its worst checked group last."""
    lines = [
        f"interval coverage at {_percent_level(level)} per group of held-out rows; "
        f"groups under {table['min_rows']} measured rows unchecked",
        f"{'feature':<14}{'group':<26}{'rows':>8}{'withheld':>10}{'coverage':>10}{'vs level':>10}",
    ]
    for feature, groups in table["features"].items():
        lines += [_coverage_row(feature, group, entry, level) for group, entry in groups.items()]
    lines.append(_worst_line(worst_group(table, level), level, table["min_rows"]))
    return lines


def _coverage_row(feature: str, group: str, entry: Mapping[str, Any], level: float) -> str:
    coverage = entry["coverage"]
    versus = "-" if coverage is None else f"{_points_over(coverage, level):+.1f} pt"
    row = (
        f"{_fit(feature, 14)}{_fit(group, 26)}{entry['rows']:>8}{entry['withheld']:>10}"
        f"{_percent(coverage):>10}{versus:>10}"
    )
    return row if entry["checked"] else f"{row}  unchecked"


def _worst_line(worst: Mapping[str, Any] | None, level: float, min_rows: int) -> str:
    if worst is None:
        return f"no group has {min_rows} measured rows: none checked"
    where = f"{_fit(worst['feature'], 14).rstrip()} {_fit(worst['group'], 26).rstrip()}"
    at = f"at {_percent(worst['coverage'])}"
    if worst["gap"] <= 0:
        return f"every checked group reaches {_percent_level(level)}; lowest: {where} {at}"
    under = -_points_over(worst["coverage"], level)
    return f"worst checked group: {where} {at}, {under:.1f} points under"


def fairness_lines(report: Mapping[str, Any]) -> list[str]:
    """`fairness` as one fixed-width table per categorical feature."""
    top = f"top {_percent_level(report['top_share'])} = {report['top_rows']} rows by prediction"
    lines: list[str] = []
    for feature, categories in report["features"].items():
        lines.append(
            f"fairness by {_fit(feature, 30).rstrip()} on {report['rows']} held-out rows ({top})"
        )
        lines.append(
            f"{'category':<16}{'rows':>8}{'share':>8}{'RMSE':>11}{'MAE':>11}{'mean error':>12}"
            f"{'coverage':>10}{'in top':>8}{'top/share':>11}"
        )
        lines += [_fairness_row(name, entry) for name, entry in categories.items()]
    return lines


def _fairness_row(name: str, entry: Mapping[str, Any]) -> str:
    return (
        f"{_fit(name, 16)}{entry['rows']:>8}{_percent(entry['share_of_rows']):>8}"
        f"{_number(entry['rmse'], '.3f'):>11}{_number(entry['mae'], '.3f'):>11}"
        f"{_number(entry['mean_error'], '+.3f'):>12}{_percent(entry['coverage']):>10}"
        f"{_percent(entry['share_of_top']):>8}{_number(entry['top_ratio'], '.2f'):>11}"
    )


def _fit(text: str, width: int) -> str:
    """Left-aligned in `width`, shortened where it would run into the next column."""
    return f"{text:<{width}}" if len(text) < width else f"{text[: width - 4]}... "


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{round(100 * share, 1):.1f}%"


def _points_over(coverage: float, level: float) -> float:
    """Percentage points above the level, from the coverage as shown, so the columns agree."""
    return round(round(100 * coverage, 1) - 100 * level, 1) + 0.0  # + 0.0: no "-0.0"


def _percent_level(share: float) -> str:
    return f"{100 * share:g}%"


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)
