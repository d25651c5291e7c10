"""Which labelled upload an event names, where its run writes, and the claims that let one
delivery at a time train: their documents and staleness, and `claim`, which creates one
through the ObjectStore handed in."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from shared.store import ObjectMissing, ObjectStore, PreconditionFailed
from shared.uploads import MAX_NAME_BYTES, Ignored, Upload, parse_time, storage_object

TRAINING, RETRAINING = "training/", "retraining/"
MAX_ATTEMPTS = 3  # attempts that died (out of memory or time) before a run is given up
JSON = "application/json"


class ClaimHeld(Exception):
    """Another delivery of the same upload is training now; retry the event later."""


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


@dataclass(frozen=True)
class Run:
    """One attempt at a run: the claim it holds."""

    id: str
    attempt: int


def claim(objects: ObjectStore, upload: TrainingUpload, now: datetime, claim_seconds: float) -> Run:
    """Create the first claim not yet taken; raise ClaimHeld if a live attempt holds one."""
    names, run_id = run_names(upload), uuid.uuid4().hex
    for attempt in itertools.count(1):
        document = claim_document(run_id, attempt, upload.event_id, now)
        try:
            objects.create_if_absent(upload.bucket, names.claim(attempt), document, JSON)
        except PreconditionFailed as exc:
            held = _read_whole(objects, upload.bucket, names.claim(attempt))
            if held is not None and not claim_is_stale(held, now, claim_seconds):
                raise ClaimHeld(f"attempt {attempt} at this upload is still running") from exc
            continue
        return Run(run_id, attempt)
    raise AssertionError("unreachable")


def _read_whole(objects: ObjectStore, bucket: str, name: str) -> bytes | None:
    info = objects.info(bucket, name)
    if info is None:
        return None
    try:
        with objects.reader(bucket, name, info.generation) as source:
            return source.read()
    except ObjectMissing:
        return None
