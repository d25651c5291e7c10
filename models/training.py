"""Fit a model on a DataFrame, measure it on held-out rows, and describe it in metadata."""

from __future__ import annotations

import hashlib
import io
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from shared.preprocessing import validate
from shared.schema import CategoricalFeature, ModelSchema


@dataclass(frozen=True)
class Trained:
    artifact: bytes
    metadata: dict[str, Any]


def build_pipeline(schema: ModelSchema) -> Pipeline:
    encoders = [
        (
            feature.name,
            OneHotEncoder(categories=[list(feature.categories)], handle_unknown="ignore"),
            [feature.name],
        )
        for feature in schema.features
        if isinstance(feature, CategoricalFeature)
    ]
    columns = ColumnTransformer(encoders, remainder="passthrough", verbose_feature_names_out=False)
    return Pipeline([("features", columns), ("model", LinearRegression())])


def train(
    name: str, schema: ModelSchema, data: pd.DataFrame, version: str, *, holdout: float = 0.2
) -> Trained:
    """Clean `data` with the serving validator, fit, and score on the last `holdout` share."""
    checked = validate(data, schema, allow_extra=True)
    target = pd.to_numeric(data.loc[checked.features.index, schema.target], errors="coerce")
    usable = np.isfinite(target.to_numpy(dtype=float))
    features, target = checked.features[usable], target[usable]
    split = int(len(features) * (1 - holdout))
    pipeline = build_pipeline(schema)
    pipeline.fit(features.iloc[:split], target.iloc[:split])
    predicted = pipeline.predict(features.iloc[split:])
    artifact = _dump(pipeline)
    metadata = {
        "name": name,
        "version": version,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "estimator": type(pipeline[-1]).__name__,
        "schema": schema.to_dict(),
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "metrics": {"holdout": _metrics(target.iloc[split:].to_numpy(), predicted)},
        "training": {
            "rows_read": len(data),
            "rows_dropped": len(data) - len(features),
            "rows_fit": split,
            "rows_holdout": len(features) - split,
            "fingerprint": _fingerprint(data),
        },
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "joblib": joblib.__version__,
        },
        "example_instance": _example(features),
    }
    return Trained(artifact=artifact, metadata=metadata)


def _dump(pipeline: Pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer)
    return buffer.getvalue()


def _metrics(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    return {
        "r2": round(float(r2_score(actual, predicted)), 6),
        "mae": round(float(mean_absolute_error(actual, predicted)), 6),
        "rmse": round(float(np.sqrt(mean_squared_error(actual, predicted))), 6),
    }


def _fingerprint(data: pd.DataFrame) -> str:
    hashed = pd.util.hash_pandas_object(data, index=False).to_numpy()
    return "sha256:" + hashlib.sha256(hashed.tobytes()).hexdigest()


def _example(features: pd.DataFrame) -> dict[str, Any]:
    row = features.iloc[0]
    return {
        str(name): (float(value) if isinstance(value, int | float | np.number) else str(value))
        for name, value in row.items()
    }
