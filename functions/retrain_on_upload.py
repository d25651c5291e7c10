"""CloudEvent function `retrain_on_upload`: retrains a model on labelled data uploaded to a bucket.

Triggered by `google.cloud.storage.object.v1.finalized`; the bucket layout and the gates are
described in `models.retraining`. Events arrive at least once, sometimes concurrently, and each
upload generation is trained on at most once:

1. report.json already there: the run is over; nothing else happens.
2. The delivery that creates the claim (create-only) trains. Another delivery that finds a live
   claim fails, so the platform delivers it again later, when the report is there. A claim older
   than RETRAIN_CLAIM_SECONDS was left by an attempt that died: the next claim takes over, and
   after MAX_ATTEMPTS dead attempts the run is refused with a report.
3. current.json's generation is read before anything else, then the current model. The upload
   is read (refused past RETRAIN_MAX_ROWS lines, before any training), joined with the current
   model's training data if so configured, and the challenger is trained and measured next to
   the current model on the same held-out rows.
4. Only if every gate passes is the version uploaded and current.json moved, from the
   generation read in step 3: if anyone moved it meanwhile, this run is not promoted.
5. report.json is created last, and one log line tells the outcome.

Bad data is reported and the event acknowledged; storage and model store failures raise, so the
event is delivered again.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import functions_framework
import pandas as pd
from cloudevents.http.event import CloudEvent

from models.retraining.challenger import challenge, prepare, training_frame
from models.retraining.claims import (
    MAX_ATTEMPTS,
    ClaimHeld,
    TrainingUpload,
    claim_document,
    claim_is_stale,
    parse_event,
    run_names,
)
from models.retraining.gates import Policy, gate_decision, gates
from models.retraining.lineage import (
    BUNDLED,
    bundled_data,
    object_source,
    promoted_upload,
    recorded_sources,
    retraining_record,
    verified_earlier,
)
from models.retraining.reading import TooManyLines, parse_csv, read_capped, too_many_rows
from models.retraining.report import (
    PROMOTED,
    PROMOTED_EARLIER,
    PUBLISHED_MEANWHILE,
    TOO_MANY_ROWS,
    UNFINISHED,
    Outcome,
    refusal_decision,
    report,
)
from models.training import RECIPES, Recipe
from shared import settings as settings_module
from shared.errors import ArtifactRejected, ModelNotFound, ModelUnavailable, PublishConflict
from shared.logs import log
from shared.model_store import (
    Backend,
    LoadedModel,
    live_pointer,
    load_current,
    open_backend,
    set_current,
    upload_version,
)
from shared.object_store import AlreadyExists, ObjectAbsent, ObjectStore, ObjectStoreUnavailable
from shared.once import once
from shared.schema import SCHEMAS
from shared.settings import Settings
from shared.uploads import (
    INPUT_GONE,
    UNKNOWN_MODEL,
    FileProblem,
    Ignored,
    Laps,
    encode_report,
    is_too_old,
)

JSON = "application/json"


@functions_framework.cloud_event
def retrain_on_upload(event: CloudEvent) -> None:
    """Train a challenger on training/<model>/<path>, gate it, and promote it or say why not.

    Returns (acknowledging the event) when the object is not training data, the event is too
    old, the run is already over, or its report was written. Raises when storage or the model
    store fails, or another delivery is training on the same upload: the event comes again.
    """
    started = datetime.now(UTC)
    upload = parse_event(event.get_attributes(), event.get_data())
    if isinstance(upload, Ignored):
        log("INFO", "event ignored", reason=upload.reason, event_id=event["id"])
        return
    runtime = _runtime_once()
    if is_too_old(upload.event_time, started, runtime.settings.max_event_age_seconds):
        log("WARNING", "event too old; dropped without training", **upload.log_fields())
        return
    try:
        if runtime.objects.info(upload.bucket, run_names(upload).report) is not None:
            log("INFO", "upload already retrained on; nothing to do", **upload.log_fields())
            return
        run = _claim(runtime, upload, started)
        document = _retrain(runtime, upload, run, started)
        _finish(runtime, upload, document)
    except (ObjectStoreUnavailable, ModelUnavailable, ClaimHeld) as exc:
        log(
            "WARNING",
            "retraining not finished; the event will be retried",
            error=str(exc),
            **upload.log_fields(),
        )
        raise


@dataclass
class _Runtime:
    settings: Settings
    policy: Policy
    models: Backend
    objects: ObjectStore


def _make_runtime() -> _Runtime:
    """Settings, model store and storage client, made once per process on first use."""
    settings = settings_module.from_env()
    timeout, emulator = settings.storage_timeout_seconds, settings.storage_emulator_host
    models = open_backend(settings.model_store, timeout, emulator)
    policy = Policy.from_settings(settings)
    return _Runtime(settings, policy, models, ObjectStore(timeout, emulator))


_runtime_once = once(_make_runtime)


@dataclass(frozen=True)
class _Run:
    id: str
    attempt: int


def _claim(runtime: _Runtime, upload: TrainingUpload, now: datetime) -> _Run:
    """Create the first claim not yet taken; raise ClaimHeld if a live attempt holds one."""
    names, run_id = run_names(upload), uuid.uuid4().hex
    for attempt in itertools.count(1):
        document = claim_document(run_id, attempt, upload.event_id, now)
        try:
            runtime.objects.create_if_absent(upload.bucket, names.claim(attempt), document, JSON)
        except AlreadyExists as exc:
            held = _read_whole(runtime.objects, upload.bucket, names.claim(attempt))
            if held is not None and not claim_is_stale(held, now, runtime.policy.claim_seconds):
                raise ClaimHeld(f"attempt {attempt} at this upload is still running") from exc
            continue
        return _Run(run_id, attempt)
    raise AssertionError("unreachable")


def _read_whole(objects: ObjectStore, bucket: str, name: str) -> bytes | None:
    info = objects.info(bucket, name)
    if info is None:
        return None
    try:
        with objects.reader(bucket, name, info.generation) as source:
            return source.read()
    except ObjectAbsent:
        return None


def _retrain(
    runtime: _Runtime, upload: TrainingUpload, run: _Run, started: datetime
) -> dict[str, Any]:
    """Everything between the claim and the report; a refusal ends it early, with reasons."""
    laps = Laps()
    outcome = Outcome()
    try:
        _attempt(runtime, upload, run, outcome, laps, started)
    except FileProblem as refused:
        outcome.problem, outcome.decision = refused, refusal_decision(refused)
        laps.lap("seconds_until_refused")
    about_run = {
        "id": run.id,
        "attempt": run.attempt,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
    }
    return report(upload, outcome, run=about_run, policy=runtime.policy, timings=laps.seconds)


def _attempt(
    runtime: _Runtime,
    upload: TrainingUpload,
    run: _Run,
    outcome: Outcome,
    laps: Laps,
    started: datetime,
) -> None:
    _check_runnable(upload, run)
    recipe = RECIPES[upload.model]
    pointer, generation = live_pointer(runtime.models, upload.model)  # before anything else
    current = _current(runtime.models, upload.model, pointer, generation, outcome)
    if current is not None and promoted_upload(current.metadata) == upload.reference:
        outcome.decision, outcome.live_after = PROMOTED_EARLIER, current.version
        outcome.challenger = {
            "version": current.version,
            "estimator": current.metadata.get("estimator"),
        }
        return  # an attempt that died after promoting trained on this very file
    earlier, sources = _earlier(runtime, recipe, current, outcome)
    uploaded = parse_csv(_read_upload(runtime, upload, _rows(earlier)), recipe.schema)
    laps.lap("reading_seconds")
    parts = [uploaded] if earlier is None else [earlier, uploaded]
    prepared = prepare(recipe, training_frame(parts, recipe.schema), _rows(earlier))
    outcome.rows = prepared.rows
    result = challenge(recipe, prepared, current, started.replace(microsecond=0))
    laps.lap("training_seconds")
    metadata = {
        **result.trained.metadata,
        "retraining": retraining_record(
            [*sources, object_source(upload.reference)],
            upload.reference,
            f"gs://{upload.bucket}/{run_names(upload).report}",
        ),
    }
    outcome.challenger = {"version": metadata["version"], "estimator": metadata["estimator"]}
    outcome.evaluation = result.evaluation
    current_schema = current.metadata.get("schema") if current else None
    outcome.gates = gates(result.evaluation, metadata["schema"], current_schema, runtime.policy)
    decision = gate_decision(outcome.gates)
    if decision is None:
        decision = _promote(
            runtime.models, upload.model, result.trained.artifact, metadata, generation
        )
    outcome.decision = decision
    outcome.live_after = _live_version(runtime.models, upload.model, outcome)
    laps.lap("promotion_seconds")


def _check_runnable(upload: TrainingUpload, run: _Run) -> None:
    if run.attempt > MAX_ATTEMPTS:
        raise FileProblem(
            UNFINISHED,
            f"{MAX_ATTEMPTS} earlier attempts at this file did not finish (out of memory or "
            "time); upload fewer rows, or give the function more memory",
        )
    if not upload.known_model:
        raise FileProblem(
            UNKNOWN_MODEL,
            f"there is no model named {upload.model}; upload into training/<model>/ with one "
            f"of: {', '.join(SCHEMAS)}",
        )


def _rows(frame: pd.DataFrame | None) -> int:
    return 0 if frame is None else len(frame)


def _live_version(backend: Backend, name: str, outcome: Outcome) -> str | None:
    if outcome.decision == PROMOTED:
        return str(outcome.challenger["version"])
    if outcome.decision == PUBLISHED_MEANWHILE:
        pointer, _ = live_pointer(backend, name)
        return pointer["version"] if pointer else None
    return outcome.current.get("version")


def _current(
    backend: Backend,
    name: str,
    pointer: dict[str, str] | None,
    generation: int,
    outcome: Outcome,
) -> LoadedModel | None:
    """The live model, or None when there is none that can be loaded (the report says why)."""
    outcome.current = {
        "version": pointer["version"] if pointer else None,
        "generation": str(generation),
    }
    if pointer is None:
        outcome.current["unusable"] = "no version is published"
        return None
    try:
        return load_current(backend, name)
    except (ModelNotFound, ArtifactRejected) as exc:
        outcome.current["unusable"] = exc.message
        return None


class _Unjoinable(Exception):
    """The current model's training data cannot be had; `str()` says why, for the report."""


def _earlier(
    runtime: _Runtime, recipe: Recipe, current: LoadedModel | None, outcome: Outcome
) -> tuple[pd.DataFrame | None, list[dict[str, str]]]:
    """The current model's training data and its sources, when configured and reproducible."""
    if not runtime.policy.join_current:
        return None, []
    try:
        if current is None:
            raise _Unjoinable("there is no usable current model")
        recorded = recorded_sources(current.metadata)
        sources = recorded or [dict(BUNDLED)]
        parts = [_source_data(runtime, recipe, source) for source in sources]
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


def _source_data(runtime: _Runtime, recipe: Recipe, source: dict[str, str]) -> pd.DataFrame:
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
        with runtime.objects.reader(bucket, name, generation) as stream:
            return parse_csv(read_capped(stream, runtime.policy.max_rows), recipe.schema)
    except ObjectAbsent as exc:
        raise _Unjoinable(f"gs://{bucket}/{name} generation {generation} is gone") from exc
    except TooManyLines as exc:
        raise FileProblem(
            TOO_MANY_ROWS,
            f"the current model's training data alone has more than {exc.limit} data lines "
            "(RETRAIN_MAX_ROWS); set RETRAIN_JOIN_CURRENT to false",
        ) from exc
    except FileProblem as exc:
        raise _Unjoinable(f"gs://{bucket}/{name} is no longer readable: {exc.message}") from exc


def _read_upload(runtime: _Runtime, upload: TrainingUpload, joined_rows: int) -> bytes:
    """The upload's bytes; refused before any training when the run would take too many rows."""
    limit = runtime.policy.max_rows
    if joined_rows >= limit:
        raise too_many_rows(limit, joined_rows)
    try:
        with runtime.objects.reader(upload.bucket, upload.name, upload.generation) as source:
            return read_capped(source, limit - joined_rows)
    except TooManyLines as exc:
        raise too_many_rows(limit, joined_rows) from exc
    except ObjectAbsent as exc:
        raise FileProblem(
            INPUT_GONE,
            f"generation {upload.generation} of the file no longer exists (replaced or deleted "
            "before it was trained on)",
        ) from exc


def _promote(
    backend: Backend, name: str, artifact: bytes, metadata: dict[str, Any], generation: int
) -> str:
    """Upload the version, then move current.json only from the generation read first."""
    version = str(metadata["version"])
    try:
        upload_version(backend, name, version, artifact, metadata)
    except PublishConflict:  # the same name, made from other data in the same second
        return PUBLISHED_MEANWHILE
    try:
        set_current(backend, name, version, expected_generation=generation)
    except PublishConflict:
        pointer, _ = live_pointer(backend, name)
        if pointer is None or pointer["version"] != version:  # not our own retried write
            return PUBLISHED_MEANWHILE
    return PROMOTED


def _finish(runtime: _Runtime, upload: TrainingUpload, document: dict[str, Any]) -> None:
    """Create the report (the first one stands) and log the outcome in one line."""
    try:
        runtime.objects.create_if_absent(
            upload.bucket, run_names(upload).report, encode_report(document), JSON
        )
        written = True
    except AlreadyExists:
        written = False
    rows, metrics = document["rows"] or {}, document["metrics"] or {}
    log(
        "INFO" if document["problem"] is None else "WARNING",
        "retraining finished",
        decision=document["decision"],
        failed_gates=document["failed_gates"],
        problem=(document["problem"] or {}).get("code"),
        current_version=(document["model"]["current"] or {}).get("version"),
        challenger_version=(document["model"]["challenger"] or {}).get("version"),
        live_version=document["model"]["live_after"],
        rows_used=(rows.get("uploaded") or {}).get("used"),
        rows_rejected=(rows.get("uploaded") or {}).get("rejected"),
        evaluation_rows=metrics.get("evaluation_rows"),
        challenger_rmse=(metrics.get("challenger") or {}).get("rmse"),
        current_rmse=(metrics.get("current") or {}).get("rmse"),
        run_id=document["run"]["id"],
        report_written=written,
        timings=document["timings"],
        **upload.log_fields(),
    )
