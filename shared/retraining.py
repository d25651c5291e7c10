"""Retraining on uploaded data: which upload an event names, the gates, the decision, the report.

Layout of the data bucket (everything outside `training/` is ignored, so a run never triggers
itself, and files uploaded for scoring under `incoming/` never start a training):

    training/<model>/<path>        labelled data: <path> ends in .csv or .csv.gz (any case) and
                                   may have folders; the model's feature columns and its target,
                                   as `python -m models train --data` reads them
    retraining/<model>/<path>/<generation>/
        claim-<n>.json             attempt n at this run, created (never overwritten) before
                                   training, so one delivery at a time trains. A claim older than
                                   RETRAIN_CLAIM_SECONDS belongs to an attempt that died; the next
                                   delivery takes over with claim n+1.
        report.json                what the run did and why; created once, last: its presence
                                   means the run is over and a redelivered event does nothing

The gates a challenger must pass, each reported with its numbers:

    schema       the challenger's feature schema equals the current model's
    finite       every challenger prediction on the evaluation rows is a finite number
    improvement  challenger RMSE <= current RMSE * (1 - RETRAIN_MIN_IMPROVEMENT)
    coverage     the challenger's 90% intervals cover 90% (+- RETRAIN_COVERAGE_TOLERANCE) of them

Nothing here talks to storage or trains: streams come in, numbers and documents go out.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, cast

import numpy as np
import orjson
import pandas as pd

from shared.intervals import LevelTooHigh, half_width
from shared.schema import ModelSchema
from shared.settings import Settings
from shared.uploads import (
    EMPTY,
    MAX_NAME_BYTES,
    MISSING_COLUMNS,
    NOT_CSV,
    NOT_GZIP,
    NOT_UTF8,
    REPEATED_COLUMN,
    FileProblem,
    Ignored,
    Upload,
    parse_time,
    storage_object,
)

TRAINING, RETRAINING = "training/", "retraining/"
COVERAGE_LEVEL = 0.9
MAX_ATTEMPTS = 3  # attempts that died (out of memory or time) before a run is given up
READ_CHUNK_BYTES = 1024 * 1024

PROMOTED = "promoted"
PROMOTED_EARLIER = "promoted (by an earlier attempt at this file)"
FAILED_GATES = "not promoted: failed"
PUBLISHED_MEANWHILE = "not promoted: another version was published meanwhile"

# Codes of refusals, as they appear in report.json, and the decision each one leads to; the
# codes of unreadable files, and the error that carries them all, are upload scoring's
# (shared.uploads: FileProblem).
TOO_FEW_ROWS = "too_few_rows"
UNTRAINABLE = "untrainable"
TOO_MANY_ROWS = "too_many_rows"
UNFINISHED = "unfinished_attempts"
_DECISIONS = {
    TOO_MANY_ROWS: "refused: too many rows",
    UNFINISHED: "refused: earlier attempts did not finish",
}
BAD_DATA = "refused: bad data"


def refusal_decision(problem: FileProblem) -> str:
    """The decision of a run refused with this problem: it ends with a report, no new model."""
    return _DECISIONS.get(problem.code, BAD_DATA)


class ClaimHeld(Exception):
    """Another delivery of the same upload is training now; retry the event later."""


class TooManyLines(Exception):
    """A file has more data lines than the run may take."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} data lines")
        self.limit = limit


def too_many_rows(limit: int, joined: int) -> FileProblem:
    """The refusal for a run over RETRAIN_MAX_ROWS, with the joined rows counted in."""
    if joined == 0:
        return FileProblem(
            TOO_MANY_ROWS,
            f"the file has more than {limit} data lines (RETRAIN_MAX_ROWS), more than one run "
            "can train on within the function's time and memory; upload a sample, or split it",
        )
    return FileProblem(
        TOO_MANY_ROWS,
        f"the file and the {joined} rows joined from the current model's training data have "
        f"more than {limit} data lines together (RETRAIN_MAX_ROWS), more than one run can "
        "train on within the function's time and memory; upload less, or set "
        "RETRAIN_JOIN_CURRENT to false",
    )


@dataclass(frozen=True)
class TrainingUpload(Upload):
    """One generation of one labelled file, as a finalized event names it."""

    @property
    def reference(self) -> dict[str, str]:
        return {"bucket": self.bucket, "name": self.name, "generation": str(self.generation)}


@dataclass(frozen=True)
class RunNames:
    folder: str
    report: str

    def claim(self, attempt: int) -> str:
        return f"{self.folder}claim-{attempt}.json"


@dataclass(frozen=True)
class Policy:
    """What the gates demand and how much one run may take, from the settings."""

    min_improvement: float
    coverage_tolerance: float
    join_current: bool
    max_rows: int
    claim_seconds: float
    coverage_level: float = COVERAGE_LEVEL

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            min_improvement=settings.retrain_min_improvement,
            coverage_tolerance=settings.retrain_coverage_tolerance,
            join_current=settings.retrain_join_current,
            max_rows=settings.retrain_max_rows,
            claim_seconds=settings.retrain_claim_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_improvement": self.min_improvement,
            "coverage_level": self.coverage_level,
            "coverage_tolerance": self.coverage_tolerance,
            "join_current": self.join_current,
            "max_rows": self.max_rows,
        }


def parse_event(attributes: Mapping[str, Any], data: object) -> TrainingUpload | Ignored:
    """The labelled upload a Cloud Storage event names, or why there is nothing to train on."""
    upload = storage_object(attributes, data, TRAINING, TrainingUpload)
    if isinstance(upload, TrainingUpload) and (
        len(run_names(upload).claim(MAX_ATTEMPTS + 1).encode()) > MAX_NAME_BYTES
    ):
        return Ignored("object name too long to name its report")
    return upload


def run_names(upload: TrainingUpload) -> RunNames:
    folder = f"{RETRAINING}{upload.model}/{upload.relative_name}/{upload.generation}/"
    return RunNames(folder=folder, report=f"{folder}report.json")


# Claims


def claim_document(run_id: str, attempt: int, event_id: str, now: datetime) -> bytes:
    claim = {"run_id": run_id, "attempt": attempt, "event_id": event_id, "claimed_at": now}
    return orjson.dumps(claim, option=orjson.OPT_INDENT_2) + b"\n"


def claim_is_stale(data: bytes, now: datetime, claim_seconds: float) -> bool:
    """Whether the attempt that wrote this claim has had more time than a run can take.

    A claim that cannot be read names no live attempt, so it is stale too.
    """
    try:
        claimed = parse_time(orjson.loads(data).get("claimed_at"))
    except (orjson.JSONDecodeError, AttributeError):
        return True
    return claimed is None or (now - claimed).total_seconds() > claim_seconds


# Reading the upload


def read_capped(source: IO[bytes], max_rows: int) -> bytes:
    """The file's bytes (gunzipped when it starts like gzip), read no further than needed to
    know that it has more than `max_rows` data lines (TooManyLines).

    Lines are counted, not parsed: a quoted field holding a newline counts twice, so the count
    can only err towards refusing.
    """
    binary = source
    if _peek(source, 2) == b"\x1f\x8b":
        binary = cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
    chunks: list[bytes] = []
    newlines, last = 0, b"\n"
    try:
        while chunk := binary.read(READ_CHUNK_BYTES):
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
            if newlines - 1 > max_rows:
                raise TooManyLines(max_rows)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FileProblem(
            NOT_GZIP, f"the file starts like gzip but cannot be decompressed: {exc}"
        ) from exc
    if newlines + (last != b"\n") - 1 > max_rows:
        raise TooManyLines(max_rows)
    return b"".join(chunks)


def _peek(source: IO[bytes], size: int) -> bytes:
    if isinstance(source, io.BufferedReader):
        return source.peek(size)[:size]
    start = source.tell()
    head = source.read(size)
    source.seek(start)
    return head


def parse_csv(data: bytes, schema: ModelSchema) -> pd.DataFrame:
    """The model's feature columns and target, found by header name (case and surrounding
    spaces ignored; other columns are never loaded), read as `python -m models train --data`
    reads a file."""
    wanted = [*schema.feature_names, schema.target]
    folded = {name.casefold() for name in wanted}
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            encoding="utf-8-sig",
            usecols=lambda column: str(column).strip().casefold() in folded,
        )
    except pd.errors.EmptyDataError as exc:
        raise FileProblem(EMPTY, "the file is empty; expected a header row and data rows") from exc
    except UnicodeDecodeError as exc:
        raise FileProblem(NOT_UTF8, "the file is not UTF-8 text; save it as CSV UTF-8") from exc
    except pd.errors.ParserError as exc:
        raise FileProblem(NOT_CSV, f"the file is not valid CSV: {exc}") from exc
    found: dict[str, list[str]] = {}
    for column in frame.columns:
        found.setdefault(str(column).strip().casefold(), []).append(str(column))
    repeated = [columns for columns in found.values() if len(columns) > 1]
    if repeated:
        raise FileProblem(
            REPEATED_COLUMN,
            f"the header names one column more than once ({', '.join(repeated[0])}); keep one",
        )
    missing = [name for name in wanted if name.casefold() not in found]
    if missing:
        raise FileProblem(
            MISSING_COLUMNS,
            f"the header has no column {', '.join(missing)}; training data needs the columns "
            f"{', '.join(wanted)} (in any order; other columns are ignored)",
        )
    return frame.rename(columns={found[name.casefold()][0]: name for name in wanted})[wanted]


# Measuring


@dataclass(frozen=True)
class Scores:
    """One model's predictions on the evaluation rows, measured."""

    rmse: float
    mae: float
    r2: float
    non_finite: int  # predictions that are NaN or infinite
    coverage: float | None  # share of rows inside the interval; None: the model has none

    def to_dict(self) -> dict[str, Any]:
        return {
            "rmse": _finite_or_none(self.rmse),
            "mae": _finite_or_none(self.mae),
            "r2": _finite_or_none(self.r2),
            "non_finite_predictions": self.non_finite,
            f"interval_coverage_{COVERAGE_LEVEL:g}": self.coverage,
        }


@dataclass(frozen=True)
class Evaluation:
    """Both models on the same rows: the challenger's held-out rows that came from the upload."""

    rows: int
    challenger: Scores
    current: Scores | None  # None: no usable current model


def scores(
    actual: np.ndarray, predicted: np.ndarray, residuals: Sequence[float] | None, level: float
) -> Scores:
    """RMSE, MAE, R2 and interval coverage; non-finite predictions make the errors infinite."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    with np.errstate(all="ignore"):
        errors = actual - predicted
        finite = bool(np.isfinite(errors).all())
        squared = float(np.mean(errors**2)) if finite else math.inf
        spread = float(np.sum((actual - actual.mean()) ** 2))
        r2 = 1 - squared * len(actual) / spread if spread > 0 and finite else -math.inf
    return Scores(
        rmse=round(math.sqrt(squared), 6),
        mae=round(float(np.mean(np.abs(errors))), 6) if finite else math.inf,
        r2=round(r2, 6),
        non_finite=int((~np.isfinite(predicted)).sum()),
        coverage=_coverage(errors, residuals, level),
    )


def _coverage(errors: np.ndarray, residuals: Sequence[float] | None, level: float) -> float | None:
    if not residuals:
        return None
    try:
        width = half_width(residuals, level)
    except LevelTooHigh:
        return None
    with np.errstate(invalid="ignore"):
        return round(float(np.mean(np.abs(errors) <= width)), 4)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# Gates and decision


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool
    detail: str
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "detail": self.detail, **self.numbers}


def schema_gate(challenger: Mapping[str, Any], current: Mapping[str, Any] | None) -> Gate:
    if current is None:
        return Gate("schema", True, "no usable current model to compare with")
    differing = schema_differences(_as_json(challenger), _as_json(current))
    if not differing:
        return Gate("schema", True, "same features, ranges, categories and target")
    detail = (
        f"the schemas differ in {', '.join(differing)}: a request valid for one model may not "
        "be for the other"
    )
    return Gate("schema", False, detail, {"differing": differing})


def schema_differences(one: Any, other: Any) -> list[str]:
    """The features (by name), `target` or `feature order` in which two schema dicts differ."""
    if one == other:
        return []
    if not isinstance(one, dict) or not isinstance(other, dict):
        return ["schema"]
    features = [_by_name(one.get("features")), _by_name(other.get("features"))]
    names = sorted({*features[0], *features[1]})
    differing = [name for name in names if features[0].get(name) != features[1].get(name)]
    if not differing and list(features[0]) != list(features[1]):
        differing.append("feature order")
    if one.get("target") != other.get("target"):
        differing.append("target")
    return differing or ["schema"]


def _by_name(features: object) -> dict[str, Any]:
    if not isinstance(features, list):
        return {}
    return {str(item.get("name")): item for item in features if isinstance(item, dict)}


def finite_gate(challenger: Scores, rows: int) -> Gate:
    passed = challenger.non_finite == 0
    detail = (
        f"all {rows} predictions are finite"
        if passed
        else (f"{challenger.non_finite} of {rows} predictions are NaN or infinite")
    )
    return Gate("finite", passed, detail, {"non_finite": challenger.non_finite, "rows": rows})


def improvement_gate(challenger: Scores, current: Scores | None, margin: float) -> Gate:
    numbers: dict[str, Any] = {
        "challenger_rmse": _finite_or_none(challenger.rmse),
        "current_rmse": None if current is None else _finite_or_none(current.rmse),
        "required_improvement": margin,
    }
    if current is None:
        return Gate("improvement", True, "no usable current model to compare with", numbers)
    if not math.isfinite(challenger.rmse):
        return Gate("improvement", False, "the challenger's error is not finite", numbers)
    if not math.isfinite(current.rmse):
        return Gate("improvement", True, "the current model's error is not finite", numbers)
    improvement = (
        (current.rmse - challenger.rmse) / current.rmse
        if current.rmse > 0
        else (0.0 if challenger.rmse == 0 else -math.inf)
    )
    numbers["improvement"] = _finite_or_none(round(improvement, 6))
    passed = challenger.rmse <= current.rmse * (1 - margin)
    detail = (
        f"RMSE {challenger.rmse:g} against the current model's {current.rmse:g}: "
        f"{improvement:+.1%}, {'at least' if passed else 'less than'} the {margin:.1%} required"
    )
    return Gate("improvement", passed, detail, numbers)


def coverage_gate(challenger: Scores, level: float, tolerance: float) -> Gate:
    numbers = {"level": level, "coverage": challenger.coverage, "tolerance": tolerance}
    if challenger.coverage is None:
        return Gate("coverage", False, f"the challenger has no {level:.0%} intervals", numbers)
    passed = abs(challenger.coverage - level) <= tolerance + 1e-12
    detail = (
        f"{level:.0%} intervals cover {challenger.coverage:.1%} of the evaluation rows; "
        f"{level - tolerance:.1%} to {level + tolerance:.1%} is accepted"
    )
    return Gate("coverage", passed, detail, numbers)


def gates(
    evaluation: Evaluation,
    challenger_schema: Mapping[str, Any],
    current_schema: Mapping[str, Any] | None,
    policy: Policy,
) -> list[Gate]:
    """Every gate, in a fixed order; all are evaluated even when one fails."""
    return [
        schema_gate(challenger_schema, current_schema),
        finite_gate(evaluation.challenger, evaluation.rows),
        improvement_gate(evaluation.challenger, evaluation.current, policy.min_improvement),
        coverage_gate(evaluation.challenger, policy.coverage_level, policy.coverage_tolerance),
    ]


def failed(checked: Sequence[Gate]) -> list[str]:
    return [gate.name for gate in checked if not gate.passed]


def gate_decision(checked: Sequence[Gate]) -> str | None:
    """The decision when a gate failed; None when the challenger may be promoted."""
    names = failed(checked)
    return f"{FAILED_GATES} {', '.join(names)}" if names else None


def _as_json(value: object) -> object:
    """Tuples and lists alike, as metadata.json stores them."""
    return orjson.loads(orjson.dumps(value))


# The report


@dataclass
class Outcome:
    """What one run found out, filled in as it goes; `decision` is set last."""

    decision: str = ""
    problem: FileProblem | None = None
    current: dict[str, Any] = field(default_factory=dict)
    challenger: dict[str, Any] = field(default_factory=dict)
    live_after: str | None = None
    rows: dict[str, Any] = field(default_factory=dict)
    join: dict[str, Any] | None = None
    evaluation: Evaluation | None = None
    gates: list[Gate] = field(default_factory=list)


def report(
    upload: TrainingUpload,
    outcome: Outcome,
    *,
    run: Mapping[str, Any],
    policy: Policy,
    timings: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything a reader needs to see why a model went live or did not."""
    evaluation = outcome.evaluation
    return {
        "decision": outcome.decision,
        "promoted": outcome.decision in (PROMOTED, PROMOTED_EARLIER),
        "failed_gates": failed(outcome.gates),
        "problem": None
        if outcome.problem is None
        else {"code": outcome.problem.code, "message": outcome.problem.message},
        "run": dict(run),
        "event": {
            "id": upload.event_id,
            "time": upload.event_time.isoformat() if upload.event_time else None,
        },
        "input": upload.reference,
        "model": {
            "name": upload.model,
            "current": outcome.current or None,
            "challenger": outcome.challenger or None,
            "live_after": outcome.live_after,
        },
        "rows": outcome.rows,
        "join": outcome.join,
        "metrics": None
        if evaluation is None
        else {
            "evaluation_rows": evaluation.rows,
            "challenger": evaluation.challenger.to_dict(),
            "current": None if evaluation.current is None else evaluation.current.to_dict(),
        },
        "gates": [gate.to_dict() for gate in outcome.gates],
        "settings": policy.to_dict(),
        "timings": dict(timings),
    }
