"""A challenger trained the way `python -m models train` trains, measured next to the current model.

Both are measured on the same rows: the challenger's own held-out rows (the split `train` makes,
reproduced with the same `clean` and `split`) that came from the upload. The challenger never
saw them, and they are what the upload says the world looks like now.

"The data the current model was trained on" (for RETRAIN_JOIN_CURRENT): a version made by
retraining lists its training files in its metadata (`retraining.training_data`: objects at
their generations, and `bundled` for the bundled default data); a version without that list was
trained on the bundled default data (`python -m models regenerate`). Either is used only if it
reproduces the training fingerprint in the version's metadata; otherwise nothing is joined and
the report says why.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import joblib
import numpy as np
import pandas as pd

from models.data import default_data
from models.training import Recipe, Trained, clean, fingerprint, split, train
from shared.model_store import LoadedModel
from shared.retraining import (
    COVERAGE_LEVEL,
    TOO_FEW_ROWS,
    UNTRAINABLE,
    Evaluation,
    scores,
)
from shared.schema import ModelSchema
from shared.uploads import FileProblem

MIN_EVALUATION_ROWS = 200  # below this, the coverage gate could not tell 90% from 85%
BUNDLED = {"source": "bundled"}


def object_source(reference: Mapping[str, str]) -> dict[str, str]:
    """An uploaded file at one generation, as a training data source."""
    return {"source": "object", **reference}


@dataclass(frozen=True)
class Prepared:
    """The training frame cleaned and split as `train` will split it; which rows evaluate."""

    frame: pd.DataFrame
    features: pd.DataFrame
    target: pd.Series
    evaluation: np.ndarray  # positions in `features`
    rows: dict[str, Any]


@dataclass(frozen=True)
class Challenge:
    trained: Trained
    evaluation: Evaluation


def training_frame(parts: Sequence[pd.DataFrame], schema: ModelSchema) -> pd.DataFrame:
    """The parts one after another (earlier data first), with the model's columns only."""
    columns = [*schema.feature_names, schema.target]
    return pd.concat([part[columns] for part in parts], ignore_index=True)


def prepare(recipe: Recipe, frame: pd.DataFrame, uploaded_from: int) -> Prepared:
    """Clean and split as `train` will; rows at `uploaded_from` and after are the upload's.

    Raises FileProblem when too few of the upload's rows would be held out to measure on.
    """
    cleaned = clean(frame, recipe.schema)
    origin = cleaned.features.index.to_numpy()
    fit, calibration, held_out = split(len(origin), recipe.time_ordered)
    evaluation = held_out[origin[held_out] >= uploaded_from]
    used_upload = int((origin >= uploaded_from).sum())
    rows: dict[str, Any] = {
        "uploaded": {
            "read": len(frame) - uploaded_from,
            "used": used_upload,
            "rejected": len(frame) - uploaded_from - used_upload,
        },
        "joined": None
        if uploaded_from == 0
        else {"read": uploaded_from, "used": len(origin) - used_upload},
        "rejected_reasons": cleaned.dropped,
        "training": {"fit": len(fit), "calibration": len(calibration), "held_out": len(held_out)},
        "evaluation": len(evaluation),
    }
    if len(evaluation) < MIN_EVALUATION_ROWS:
        raise_too_few(len(evaluation), used_upload)
    return Prepared(
        frame=frame,
        features=cleaned.features.reset_index(drop=True),
        target=cleaned.target.reset_index(drop=True),
        evaluation=evaluation,
        rows=rows,
    )


def raise_too_few(evaluation_rows: int, used: int) -> None:
    raise FileProblem(
        TOO_FEW_ROWS,
        f"{used} usable rows in the file leave {evaluation_rows} held-out rows to compare the "
        f"models on; at least {MIN_EVALUATION_ROWS} are needed (about "
        f"{MIN_EVALUATION_ROWS * 5} usable rows)",
    )


def challenge(
    recipe: Recipe,
    prepared: Prepared,
    current: LoadedModel | None,
    created: datetime,
    level: float = COVERAGE_LEVEL,
) -> Challenge:
    """Train the challenger exactly as `python -m models train` does; measure both models."""
    try:
        trained = train(recipe, prepared.frame, None, created)
    except ValueError as exc:
        raise FileProblem(UNTRAINABLE, f"training failed on this data: {exc}") from exc
    rows = prepared.features.iloc[prepared.evaluation][list(recipe.schema.feature_names)]
    actual = prepared.target.iloc[prepared.evaluation].to_numpy(dtype=float)
    challenger = joblib.load(io.BytesIO(trained.artifact))
    measured = scores(actual, challenger.predict(rows), _residuals(trained.metadata), level)
    measured_current = None
    if current is not None:
        names = list(current.schema.feature_names)
        predicted = np.asarray(current.pipeline.predict(rows[names]), dtype=float)
        measured_current = scores(actual, predicted, _residuals(current.metadata), level)
    return Challenge(trained, Evaluation(len(actual), measured, measured_current))


def _residuals(metadata: Mapping[str, Any]) -> list[float] | None:
    intervals = metadata.get("intervals")
    residuals = intervals.get("abs_residuals") if isinstance(intervals, dict) else None
    return residuals if isinstance(residuals, list) else None


# What the current model was trained on


def recorded_sources(metadata: Mapping[str, Any]) -> list[dict[str, str]] | None:
    """The training files a version made by retraining lists; None for any other version."""
    record = metadata.get("retraining")
    sources = record.get("training_data") if isinstance(record, dict) else None
    if not isinstance(sources, list) or not all(isinstance(s, dict) for s in sources):
        return None
    return [{str(k): str(v) for k, v in source.items()} for source in sources]


def promoted_upload(metadata: Mapping[str, Any]) -> dict[str, str] | None:
    """The upload a version made by retraining was trained on; None for any other version."""
    record = metadata.get("retraining")
    upload = record.get("upload") if isinstance(record, dict) else None
    return {str(k): str(v) for k, v in upload.items()} if isinstance(upload, dict) else None


def bundled_data(name: str) -> pd.DataFrame:
    """The bundled default data of `name`, as `python -m models regenerate` trains on it."""
    return default_data(name, None)


def verified_earlier(
    parts: Sequence[pd.DataFrame], recorded: bool, metadata: Mapping[str, Any], schema: ModelSchema
) -> pd.DataFrame | None:
    """The current model's training data, if `parts` reproduce its fingerprint; else None.

    `recorded`: the parts are the files its metadata lists (joined as retraining joins them);
    otherwise the one part is the bundled default data, fingerprinted as regenerate saw it.
    """
    training = metadata.get("training")
    expected = training.get("fingerprint") if isinstance(training, dict) else None
    if recorded:
        frame = training_frame(parts, schema)
        return frame if fingerprint(frame) == expected else None
    if len(parts) != 1 or fingerprint(parts[0]) != expected:
        return None
    return training_frame(parts, schema)


def retraining_record(
    sources: Sequence[Mapping[str, str]], upload: Mapping[str, str], report: str
) -> dict[str, Any]:
    """What a version made by retraining says about its making, in its metadata."""
    return {
        "training_data": [dict(source) for source in sources],
        "upload": dict(upload),
        "report": report,
    }
