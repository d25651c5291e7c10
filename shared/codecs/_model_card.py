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
        "features": [feature.to_dict() for feature in model.schema.features],
        "target": model.schema.to_dict()["target"],
        "instance_schema": model.schema.json_schema(),
        "metrics": metadata.get("metrics", {}),
        "training": metadata.get("training", {}),
        "options": {
            "interval": "intervals" in metadata,
            "explain": "explanations" in metadata,
        },
        "example_request": {"instances": [example]},
    }
