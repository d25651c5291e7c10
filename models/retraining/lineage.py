"""What a version was trained on, for RETRAIN_JOIN_CURRENT, and what a new one records.

"The data the current model was trained on": a version made by retraining lists its training
files in its metadata (`retraining.training_data`: objects at their generations, and `bundled`
for the bundled default data); a version without that list was trained on the bundled default
data (`python -m models regenerate`). Either is used only if it reproduces the training
fingerprint in the version's metadata; otherwise nothing is joined and the report says why.

`current_training_data` reads it, through the ObjectStore handed in; the rest is pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from models.data import default_data
from models.recipes import Recipe
from models.retraining.challenger import training_frame
from models.retraining.gates import Policy
from models.retraining.reading import TooManyLines, parse_csv, read_capped
from models.retraining.report import TOO_MANY_ROWS, Outcome
from models.training import fingerprint
from shared.schema import ModelSchema
from shared.store import LoadedModel, ObjectMissing, ObjectStore
from shared.uploads import FileProblem

BUNDLED = {"source": "bundled"}


def object_source(reference: Mapping[str, str]) -> dict[str, str]:
    """An uploaded file at one generation, as a training data source."""
    return {"source": "object", **reference}


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


class _Unjoinable(Exception):
    """The current model's training data cannot be had; `str()` says why, for the report."""


def current_training_data(
    objects: ObjectStore,
    policy: Policy,
    recipe: Recipe,
    current: LoadedModel | None,
    outcome: Outcome,
) -> tuple[pd.DataFrame | None, list[dict[str, str]]]:
    """The current model's training data and its sources, when configured and reproducible."""
    if not policy.join_current:
        return None, []
    try:
        if current is None:
            raise _Unjoinable("there is no usable current model")
        recorded = recorded_sources(current.metadata)
        sources = recorded or [dict(BUNDLED)]
        parts = [_source_data(objects, policy, recipe, source) for source in sources]
        frame = verified_earlier(parts, recorded is not None, current.metadata, recipe.schema)
        if frame is None:
            raise _Unjoinable(
                f"the data listed for version {current.version} does not reproduce the "
                "fingerprint of the data it was trained on"
            )
    except _Unjoinable as exc:
        outcome.join = {"requested": True, "used": False, "reason": str(exc)}
        return None, []
    outcome.join = {
        "requested": True,
        "used": True,
        "version": current.version,
        "sources": sources,
        "rows": len(frame),
    }
    return frame, sources


def _source_data(
    objects: ObjectStore, policy: Policy, recipe: Recipe, source: dict[str, str]
) -> pd.DataFrame:
    if source.get("source") == "bundled":
        try:
            return bundled_data(recipe.name)
        except OSError as exc:
            raise _Unjoinable(
                f"the bundled training data of {recipe.name} is not deployed with the function"
            ) from exc
    try:
        bucket, name, generation = source["bucket"], source["name"], int(source["generation"])
    except (KeyError, ValueError) as exc:
        raise _Unjoinable(f"a training data source is malformed: {source}") from exc
    try:
        with objects.reader(bucket, name, generation) as stream:
            return parse_csv(read_capped(stream, policy.max_rows), recipe.schema)
    except ObjectMissing as exc:
        raise _Unjoinable(f"gs://{bucket}/{name} generation {generation} is gone") from exc
    except TooManyLines as exc:
        raise FileProblem(
            TOO_MANY_ROWS,
            f"the current model's training data alone has more than {exc.limit} data lines "
            "(RETRAIN_MAX_ROWS); set RETRAIN_JOIN_CURRENT to false",
        ) from exc
    except FileProblem as exc:
        raise _Unjoinable(f"gs://{bucket}/{name} is no longer readable: {exc.message}") from exc
