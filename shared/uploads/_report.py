"""report.json: what happened to one upload, and how long each phase took."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from shared.predict import Options
from shared.uploads._events import Upload
from shared.uploads._layout import output_names
from shared.uploads._problems import FileProblem
from shared.uploads._scoring import Tally


def report(
    upload: Upload,
    *,
    model_version: str | None,
    options: Options,
    tally: Tally | None,
    problem: FileProblem | None,
    timings: Mapping[str, Any],
) -> dict[str, Any]:
    """What happened to one upload: outputs and counts, or the reason there are none."""
    names = output_names(upload)
    return {
        "status": "failed" if problem else "scored",
        "event": {
            "id": upload.event_id,
            "time": upload.event_time.isoformat() if upload.event_time else None,
        },
        "input": {
            "bucket": upload.bucket,
            "name": upload.name,
            "generation": str(upload.generation),
        },
        "model": {"name": upload.model, "version": model_version},
        "interval_level": options.interval,
        "strict": options.strict,
        "rows": None
        if tally is None
        else {"read": tally.read, "scored": tally.scored, "rejected": tally.rejected},
        "outside_training_range": None if tally is None else tally.outside_counted(),
        "rejection_reasons": None if tally is None else tally.reasons_counted(),
        "outputs": None if problem else {"scored": names.scored, "rejected": names.rejected},
        "problem": None if problem is None else {"code": problem.code, "message": problem.message},
        "timings": dict(timings),
    }


def encode_report(document: Mapping[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"


class Laps:
    """Seconds spent in each phase, for the report (timings never decide anything)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(now - self._last, 3)
        self._last = now
