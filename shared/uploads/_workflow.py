"""One upload scored into its results folder, written exactly once however often its event comes.

The outputs are staged under names unique to this attempt, published by create-only copies
that each carry the identity of what made them, and report.json is created last (the protocol,
step by step: `functions.score_upload`). The only module of the package that talks to storage,
through the ObjectStore handed in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.errors import StorageUnavailable
from shared.logs import log
from shared.predict import Options
from shared.schema import MODELS
from shared.settings import Settings
from shared.store import LoadedModel, ModelStore, ObjectMissing, ObjectStore, PreconditionFailed
from shared.uploads._events import Upload
from shared.uploads._layout import OutputNames, output_identity, output_names, staging_names
from shared.uploads._problems import INPUT_GONE, OUTPUT_CONFLICT, UNKNOWN_MODEL, FileProblem
from shared.uploads._report import Laps, encode_report, report
from shared.uploads._scoring import Tally, score_stream

CSV = "text/csv; charset=utf-8"
JSON = "application/json"


def score_file(
    upload: Upload, started: datetime, models: ModelStore, objects: ObjectStore, settings: Settings
) -> None:
    """Stage, publish, report: the report is the last thing written, or nothing is.

    Raises StorageUnavailable or ModelUnavailable when storage or the model store fails
    (nothing is reported then, so a later delivery can do the work).
    """
    options = Options(interval=settings.upload_interval_level, strict=settings.upload_strict)
    laps = Laps()
    model: LoadedModel | None = None
    tally: Tally | None = None
    problem: FileProblem | None = None
    try:
        if not upload.known_model:
            raise FileProblem(
                UNKNOWN_MODEL,
                f"there is no model named {upload.model}; upload into incoming/<model>/ "
                f"with one of: {', '.join(MODELS)}",
            )
        model = models.get(upload.model)
        laps.lap("model_seconds")
        log("INFO", "scoring upload", model_version=model.version, **upload.log_fields())
        staging = staging_names(upload, uuid.uuid4().hex)
        identity = output_identity(model, options)
        chunk_rows = settings.upload_chunk_rows
        tally = _stage(objects, upload, model, options, chunk_rows, staging, identity)
        laps.lap("scoring_seconds")
        try:
            _publish_outputs(objects, upload, staging, identity)
        finally:
            _remove(objects, upload.bucket, staging)
        laps.lap("publishing_seconds")
    except FileProblem as found:
        problem = found
        laps.lap("seconds_until_the_problem")
    document = report(
        upload,
        model_version=model.version if model else None,
        options=options,
        tally=tally,
        problem=problem,
        timings={
            "started": started.isoformat(),
            "event_age_seconds": _age(upload, started),
            **laps.seconds,
        },
    )
    written = create_report(objects, upload.bucket, output_names(upload).report, document)
    _log_outcome(upload, document, written)


def _stage(
    objects: ObjectStore,
    upload: Upload,
    model: LoadedModel,
    options: Options,
    chunk_rows: int,
    staging: OutputNames,
    identity: Mapping[str, str],
) -> Tally:
    """Stream the input through the model into this attempt's staging objects."""
    bucket = upload.bucket
    scored = objects.writer(bucket, staging.scored, CSV, identity)
    rejected = objects.writer(bucket, staging.rejected, CSV, identity)
    try:
        with objects.reader(bucket, upload.name, upload.generation) as source:
            tally = score_stream(source, model, options, chunk_rows, scored.write, rejected.write)
    except ObjectMissing as exc:
        scored.discard()
        rejected.discard()
        raise FileProblem(
            INPUT_GONE,
            f"generation {upload.generation} of the input no longer exists "
            "(replaced or deleted before it was scored)",
        ) from exc
    except BaseException:
        scored.discard()
        rejected.discard()
        raise
    scored.commit()
    rejected.commit()
    return tally


def _publish_outputs(
    objects: ObjectStore, upload: Upload, staging: OutputNames, identity: Mapping[str, str]
) -> None:
    """Copy staged outputs to their final names; never over outputs of another identity."""
    final = output_names(upload)
    for source, destination in ((staging.scored, final.scored), (staging.rejected, final.rejected)):
        existing = objects.info(upload.bucket, destination)
        if existing is None:
            try:
                objects.copy_if_absent(upload.bucket, source, destination)
                continue
            except PreconditionFailed:
                existing = objects.info(upload.bucket, destination)
        if existing is not None and existing.metadata != identity:
            raise FileProblem(
                OUTPUT_CONFLICT,
                f"{destination} was already written by an earlier attempt with another model "
                "or interval setting, and is left as it was; upload the file again to score "
                "it with the current model",
            )


def create_report(
    objects: ObjectStore, bucket: str, name: str, document: Mapping[str, Any]
) -> bool:
    """Create report.json unless an attempt's is there already (that one stands): True if this
    attempt's was written, False if another's came first."""
    try:
        objects.create_if_absent(bucket, name, encode_report(document), JSON)
    except PreconditionFailed:
        return False
    return True


def _remove(objects: ObjectStore, bucket: str, staging: OutputNames) -> None:
    for name in (staging.scored, staging.rejected):
        try:
            objects.delete(bucket, name)
        except StorageUnavailable as exc:
            log("WARNING", "staging object left behind", object=name, error=str(exc))


def _age(upload: Upload, started: datetime) -> float | None:
    if upload.event_time is None:
        return None
    return round((started - upload.event_time).total_seconds(), 3)


def _log_outcome(upload: Upload, document: dict[str, Any], written: bool) -> None:
    problem = document["problem"]
    log(
        "WARNING" if problem else "INFO",
        "upload not scorable; reported" if problem else "upload scored",
        report_written=written,
        problem=problem["code"] if problem else None,
        rows=document["rows"],
        model_version=document["model"]["version"],
        timings=document["timings"],
        **upload.log_fields(),
    )
