"""The bundled models (models/), loaded once per test process, as the property tests use them.

A load verifies the artifact, and the first batch builds the trees' lookup table: loading once
keeps examples cheap. `pipeline_only` drops the serving form, so `predict` takes the frame
path; its pipeline is unpickled once, not once per example.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from shared.store import LoadedModel, LocalFolder, load_current

BUNDLED = LocalFolder(Path(__file__).resolve().parents[2] / "models")


@functools.cache
def bundled(name: str) -> LoadedModel:
    return load_current(BUNDLED, name)


@functools.cache
def pipeline_only(model: LoadedModel) -> LoadedModel:
    return dataclasses.replace(model, serving=None)
