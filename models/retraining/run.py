"""One run on one labelled upload: claim, current model, join, read, train, gates, promote, report.

The protocol it keeps, step by step, with events that come at least once and sometimes at the
same moment: `functions.retrain_on_upload`. The only module of the package that talks to
storage and the model store, through the ObjectStore and Backend handed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from models.recipes import RECIPES
from models.retraining.challenger import challenge, prepare, training_frame
from models.retraining.claims import MAX_ATTEMPTS, Run, TrainingUpload, claim, run_names
from models.retraining.gates import Policy, gate_decision, gates
from models.retraining.lineage import (
    current_training_data,
    object_source,
    promoted_upload,
    retraining_record,
)
from models.retraining.reading import TooManyLines, parse_csv, read_capped, too_many_rows
from models.retraining.report import (
    PROMOTED,
    PROMOTED_EARLIER,
    PUBLISHED_MEANWHILE,
    UNFINISHED,
    Outcome,
    refusal_decision,
    report,
)
from shared.errors import ArtifactRejected, ModelNotFound, PublishConflict
from shared.logs import log
from shared.schema import MODELS
from shared.store import (
    Backend,
    LoadedModel,
    ObjectMissing,
    ObjectStore,
    live_pointer,
    load_current,
    set_current,
    upload_version,
)
from shared.uploads import INPUT_GONE, UNKNOWN_MODEL, FileProblem, Laps, create_report


def retrain(
    upload: TrainingUpload,
    started: datetime,
    backend: Backend,
    objects: ObjectStore,
    policy: Policy,
) -> None:
    """Claim the run, train and gate a challenger, promote it or say why not; report last.

    Raises ClaimHeld while another delivery's attempt is live, and StorageUnavailable or
    ModelUnavailable when storage or the model store fails: the event is to come again.
    """
    context = _Context(policy, backend, objects)
    run = claim(objects, upload, started, policy.claim_seconds)
    document = _retrain(context, upload, run, started)
    _finish(context, upload, document)


@dataclass(frozen=True)
class _Context:
    policy: Policy
    models: Backend
    objects: ObjectStore


def _retrain(
    context: _Context, upload: TrainingUpload, run: Run, started: datetime
) -> dict[str, Any]:
    """Everything between the claim and the report; a refusal ends it early, with reasons."""
    laps = Laps()
    outcome = Outcome()
    try:
        _attempt(context, upload, run, outcome, laps, started)
    except FileProblem as refused:
        outcome.problem, outcome.decision = refused, refusal_decision(refused)
        laps.lap("seconds_until_refused")
    about_run = {
        "id": run.id,
        "attempt": run.attempt,
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
    }
    return report(upload, outcome, run=about_run, policy=context.policy, timings=laps.seconds)


def _attempt(
    context: _Context,
    upload: TrainingUpload,
    run: Run,
    outcome: Outcome,
    laps: Laps,
    started: datetime,
) -> None:
    _check_runnable(upload, run)
    recipe = RECIPES[upload.model]
    pointer, generation = live_pointer(context.models, upload.model)  # before anything else
    current = _current(context.models, upload.model, pointer, generation, outcome)
    if current is not None and promoted_upload(current.metadata) == upload.reference:
        outcome.decision, outcome.live_after = PROMOTED_EARLIER, current.version
        outcome.challenger = {
            "version": current.version,
            "estimator": current.metadata.get("estimator"),
        }
        return  # an attempt that died after promoting trained on this very file
    earlier, sources = current_training_data(
        context.objects, context.policy, recipe, current, outcome
    )
    uploaded = parse_csv(_read_upload(context, upload, _rows(earlier)), recipe.schema)
    laps.lap("reading_seconds")
    parts = [uploaded] if earlier is None else [earlier, uploaded]
    prepared = prepare(recipe, training_frame(parts, recipe.schema), _rows(earlier))
    outcome.rows = prepared.rows
    result = challenge(
        recipe,
        prepared,
        current,
        started.replace(microsecond=0),
        exclude=context.policy.exclude_features,
    )
    laps.lap("training_seconds")
    metadata = {
        **result.trained.metadata,
        "retraining": retraining_record(
            [*sources, object_source(upload.reference)],
            upload.reference,
            f"gs://{upload.bucket}/{run_names(upload).report}",
        ),
    }
    outcome.challenger = {
        "version": metadata["version"],
        "estimator": metadata["estimator"],
        # on the challenger's held-out rows, as in its metadata and model card
        "fairness": metadata.get("fairness"),
        "conditional_coverage": metadata["metrics"].get("conditional_coverage"),
    }
    outcome.evaluation = result.evaluation
    current_schema = current.metadata.get("schema") if current else None
    outcome.gates = gates(result.evaluation, metadata["schema"], current_schema, context.policy)
    decision = gate_decision(outcome.gates)
    if decision is None:
        decision = _promote(
            context.models, upload.model, result.trained.artifact, metadata, generation
        )
    outcome.decision = decision
    outcome.live_after = _live_version(context.models, upload.model, outcome)
    laps.lap("promotion_seconds")


def _check_runnable(upload: TrainingUpload, run: Run) -> None:
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
            f"of: {', '.join(MODELS)}",
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


def _read_upload(context: _Context, upload: TrainingUpload, joined_rows: int) -> bytes:
    """The upload's bytes; refused before any training when the run would take too many rows."""
    limit = context.policy.max_rows
    if joined_rows >= limit:
        raise too_many_rows(limit, joined_rows)
    try:
        with context.objects.reader(upload.bucket, upload.name, upload.generation) as source:
            return read_capped(source, limit - joined_rows)
    except TooManyLines as exc:
        raise too_many_rows(limit, joined_rows) from exc
    except ObjectMissing as exc:
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


def _finish(context: _Context, upload: TrainingUpload, document: dict[str, Any]) -> None:
    """Create the report (the first one stands) and log the outcome in one line."""
    written = create_report(context.objects, upload.bucket, run_names(upload).report, document)
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
