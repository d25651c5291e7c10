"""A challenger trained the way `python -m models train` trains, measured next to the current model.

Both are measured on the same rows: the challenger's own held-out rows (the split `train` makes,
reproduced with the same `clean` and `split`) that came from the upload. The challenger never
saw them, and they are what the upload says the world looks like now.
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

from models.calibrating import bounds
from models.groups import conditional_coverage, worst_group
from models.recipes import Recipe
from models.retraining.gates import COVERAGE_LEVEL, Evaluation, Scores, scores
from models.retraining.report import TOO_FEW_ROWS, UNTRAINABLE
from models.training import Trained, clean, dropped_reasons, split_rows, train
from shared.predict import in_domain
from shared.schema import ModelSchema
from shared.store import LoadedModel
from shared.uploads import FileProblem

MIN_EVALUATION_ROWS = 200  # below this, the coverage gate could not tell 90% from 85%


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
    """The parts one after another (earlier data first), with the model's columns only (its
    time columns first, when it has them)."""
    columns = [*schema.time, *schema.feature_names, schema.target]
    return pd.concat([part[columns] for part in parts], ignore_index=True)


def prepare(recipe: Recipe, frame: pd.DataFrame, uploaded_from: int) -> Prepared:
    """Clean and split as `train` will; rows at `uploaded_from` and after are the upload's.

    Raises FileProblem when too few of the upload's rows would be held out to measure on.
    """
    cleaned = clean(frame, recipe.schema)
    origin = cleaned.features.index.to_numpy()
    parts = split_rows(cleaned, recipe.time_ordered)
    fit, calibration, held_out = parts.fit, parts.calibration, parts.held_out
    evaluation = held_out[origin[held_out] >= uploaded_from]
    used = origin[np.concatenate([fit, calibration, held_out])]  # outliers left out
    used_upload = int((used >= uploaded_from).sum())
    rows: dict[str, Any] = {
        "uploaded": {
            "read": len(frame) - uploaded_from,
            "used": used_upload,
            "rejected": len(frame) - uploaded_from - used_upload,
        },
        "joined": None
        if uploaded_from == 0
        else {"read": uploaded_from, "used": len(used) - used_upload},
        "rejected_reasons": dropped_reasons(cleaned, parts),
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
    exclude: Sequence[str] = (),
) -> Challenge:
    """Train the challenger exactly as `python -m models train` does; measure both models as
    they would be served (values in the target's domain, intervals as serving gives them)."""
    try:
        trained = train(recipe, prepared.frame, None, created, exclude=exclude)
    except ValueError as exc:
        raise FileProblem(UNTRAINABLE, f"training failed on this data: {exc}") from exc
    rows = prepared.features.iloc[prepared.evaluation][list(recipe.schema.feature_names)]
    actual = prepared.target.iloc[prepared.evaluation].to_numpy(dtype=float)
    challenger = joblib.load(io.BytesIO(trained.artifact))
    measured = _measure(trained.metadata, challenger, rows, actual, level)
    measured_current = None
    if current is not None:
        names = list(current.schema.feature_names)
        measured_current = _measure(current.metadata, current.pipeline, rows[names], actual, level)
    return Challenge(trained, Evaluation(len(actual), measured, measured_current))


def _measure(
    metadata: Mapping[str, Any], pipeline: Any, rows: pd.DataFrame, actual: np.ndarray, level: float
) -> Scores:
    schema = ModelSchema.from_dict(metadata["schema"])
    predicted = in_domain(np.asarray(pipeline.predict(rows), dtype=float), schema.target_minimum)
    interval = bounds(metadata, rows, predicted, level)
    worst = None
    if interval is not None:
        table = conditional_coverage(rows, schema, actual, *interval)
        worst = worst_group(table, level)
    return scores(actual, predicted, interval, worst)
