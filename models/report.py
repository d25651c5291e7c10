"""The readable summary table a training run ends with."""

from __future__ import annotations

from typing import Any

from models.groups import coverage_lines, fairness_lines


def summary(metadata: dict[str, Any]) -> str:
    metrics = metadata["metrics"]
    training = metadata["training"]
    lines = [
        f"{metadata['name']} {metadata['version']}: chosen {metadata['estimator']}",
        f"rows: {training['rows_read']} read, {training['rows_dropped']} dropped, "
        f"{training['rows_fit']} fit, {training['rows_calibration']} calibration, "
        f"{training['rows_held_out']} held out ({training['split']} split)",
    ]
    lines += [
        f"  dropped: {count} x {reason}" for reason, count in training["dropped_reasons"].items()
    ]
    lines.append(f"{'held-out':<30}{'R2':>10}{'MAE':>14}{'RMSE':>14}")
    for name, scores in metrics["held_out"].items():
        label = f"{name} ({metadata['estimator']})" if name == "chosen" else name
        lines.append(
            f"{label:<30}{scores['r2']:>10.4f}{scores['mae']:>14.3f}{scores['rmse']:>14.3f}"
        )
    lines.append(f"{'cross-validation':<30}{'RMSE':>10}{'std':>14}")
    for name, scores in metrics["cross_validation"].items():
        lines.append(f"{name:<30}{scores['rmse']:>10.3f}{scores['rmse_std']:>14.3f}")
    coverage = ", ".join(
        f"{float(k):.0%}: " + (f"{v:.1%}" if v is not None else "too few calibration rows")
        for k, v in metrics["interval_coverage"].items()
    )
    lines.append(f"interval coverage on held-out rows: {coverage}")
    width = metrics.get("interval_width") or {}
    if width.get("mean") is not None:
        lines.append(
            f"mean {width['level']:.0%} interval width {width['mean']:.3f} "
            f"(one width for every row: {width['one_width_for_all']:.3f})"
        )
    lines += _backtest_lines(metrics.get("backtest"))
    conditional = metrics.get("conditional_coverage")
    if conditional and conditional.get("worst"):
        lines += coverage_lines(conditional, conditional["level"])
    elif conditional:
        lines.append(
            f"per-group coverage: no decile or category has {conditional['min_rows']} held-out "
            "rows, none checked (the model card lists them)"
        )
    fairness = metadata.get("fairness") or {}
    if fairness.get("features"):
        lines += fairness_lines(fairness)
    cost = fairness.get("exclusion_cost")
    if cost:
        lines.append(
            f"trained without {', '.join(fairness['excluded_features'])}: held-out RMSE "
            f"{cost['rmse_without']:.3f} against {cost['rmse_with']:.3f} with it "
            f"({cost['rmse_change_percent']:+.2f}%)"
        )
    return "\n".join(lines)


def _backtest_lines(backtest: dict[str, Any] | None) -> list[str]:
    if not backtest:
        return []
    lines = [
        f"rolling backtest, {backtest['origins']} one-step forecasts "
        f"{backtest['first']}-{backtest['last']}{'MAPE %':>12}{'RMSE':>14}"
    ]
    for name, scores in backtest["scores"].items():
        lines.append(f"  {name:<58}{scores['mape']:>8.3f}{scores['rmse']:>14.3f}")
    return lines
