"""The readable summary table a training run ends with."""

from __future__ import annotations

from typing import Any


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
    return "\n".join(lines)
