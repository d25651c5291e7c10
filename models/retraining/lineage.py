"""What a version was trained on, for RETRAIN_JOIN_CURRENT, and what a new one records.

"The data the current model was trained on": a version made by retraining lists its training
files in its metadata (`retraining.training_data`: objects at their generations, and `bundled`
for the bundled default data); a version without that list was trained on the bundled default
data (`python -m models regenerate`). Either is used only if it reproduces the training
fingerprint in the version's metadata; otherwise nothing is joined and the report says why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from models.data import default_data
from models.retraining.challenger import training_frame
from models.training import fingerprint
from shared.schema import ModelSchema

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
