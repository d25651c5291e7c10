"""The model card a GET answers with: what the model takes, returns, and how good it is."""

from __future__ import annotations

from typing import Any

from shared.store import LoadedModel


def model_card(model: LoadedModel, function_name: str) -> dict[str, Any]:
    metadata = model.metadata
    example = metadata.get("example_instance") or {}
    return {
        "status": "alive",  # what KServe V1 clients read from GET / as liveness
        "name": model.name,
        "function": function_name,
        "version": model.version,
        "sha256": model.sha256,
        "created": metadata.get("created"),
        "estimator": metadata.get("estimator"),
        "use": metadata.get("use", {}),
        "features": [feature.to_dict() for feature in model.schema.features],
        "target": model.schema.to_dict()["target"],
        "instance_schema": model.schema.json_schema(),
        # What a valid value is (the features' limits above) is not what the model saw:
        "training_ranges": metadata.get("training", {}).get("ranges", {}),
        "metrics": metadata.get("metrics", {}),
        "fairness": metadata.get("fairness"),
        "training": metadata.get("training", {}),
        "intervals": _intervals(metadata.get("intervals")),
        "options": {
            "interval": "intervals" in metadata,
            "explain": "explanations" in metadata,
            "strict": bool(metadata.get("training", {}).get("ranges")),
        },
        "example_request": {"instances": [example]},
    }


def _intervals(intervals: Any) -> dict[str, Any] | None:
    """How intervals are made, without the calibration scores themselves."""
    if not isinstance(intervals, dict):
        return None
    scale = intervals.get("scale") or {}
    follows = (
        "a model of the residuals' size per row"
        if "form" in scale
        else f"the {scale['feature']} feature (relative to the level)"
        if "feature" in scale
        else "nothing: one width for every row"
    )
    return {
        "method": intervals.get("method", "split-conformal"),
        "width_follows": follows,
        "calibration_rows": len(intervals.get("scores") or intervals.get("abs_residuals") or []),
        "outside_training_range": "withheld: lower and upper are null",
    }
