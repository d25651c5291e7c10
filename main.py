"""Entry points, as Cloud Run functions and `functions-framework --target NAME` load them.

Each is imported only when asked for, so a function's cold start pays for its own imports
and not for the others' (the upload function's storage client, say).
"""

from __future__ import annotations

import importlib
from typing import Any

from shared.schema import MODELS

# Each served model's HTTP function lives in functions/<model>.py.
ENTRY_POINTS = {model.function: f"functions.{model.name}" for model in MODELS.values()} | {
    "score_upload": "functions.score_upload",
    "retrain_on_upload": "functions.retrain_on_upload",
}

__all__ = list(ENTRY_POINTS)


def __getattr__(name: str) -> Any:
    if name not in ENTRY_POINTS:
        raise AttributeError(f"module 'main' has no attribute {name!r}")
    return getattr(importlib.import_module(ENTRY_POINTS[name]), name)
