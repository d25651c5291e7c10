"""CloudEvent function `score_upload`: scores CSV files uploaded to a bucket.

Triggered by `google.cloud.storage.object.v1.finalized`; the bucket layout is described in
`shared.uploads`. Events arrive at least once, sometimes concurrently, and the results
are written exactly once:

1. report.json already there: the work is done; nothing else happens.
2. The file is streamed through the model into staging objects unique to this attempt
   (resumable uploads: nothing is visible at the final names, and a crash leaves no output).
3. scored.csv and rejected.csv are published by server-side copies that only create
   (`if_generation_match=0`). Each carries the identity of what made it (model sha256,
   interval level) in its metadata; one already there with the same identity came from
   another attempt at the same work and is left as it is.
4. report.json is created last, also create-only: the first attempt's report stands and
   later attempts change nothing. Until it exists, any delivery redoes and completes the work.

Whole-file problems are reported in report.json and the event is acknowledged; storage and
model store failures raise, so the platform retries the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import functions_framework
from cloudevents.http.event import CloudEvent

from shared import settings as settings_module
from shared.errors import ModelUnavailable
from shared.inference import Options
from shared.logs import log
from shared.model_store import LoadedModel, ModelStore, open_backend
from shared.object_store import (
    AlreadyExists,
    ObjectAbsent,
    ObjectStore,
    ObjectStoreUnavailable,
)
from shared.once import once
from shared.schema import SCHEMAS
from shared.settings import Settings
from shared.uploads import (
    INPUT_GONE,
    OUTPUT_CONFLICT,
    UNKNOWN_MODEL,
    FileProblem,
    Ignored,
    Laps,
    OutputNames,
    Tally,
    Upload,
    encode_report,
    is_too_old,
    output_identity,
    output_names,
    parse_event,
    report,
    score_stream,
    staging_names,
)

CSV = "text/csv; charset=utf-8"
JSON = "application/json"


@functions_framework.cloud_event
def score_upload(event: CloudEvent) -> None:
    """Score a CSV uploaded to incoming/<model>/ into results/<model>/<name>/<generation>/.

    Returns (acknowledging the event) when the object is not an upload, the event is too old,
    the work was already done, or the file was scored or reported as unscorable. Raises when
    storage or the model store fails, so the event is delivered again.
    """
    started = datetime.now(UTC)
    upload = parse_event(event.get_attributes(), event.get_data())
    if isinstance(upload, Ignored):
        log("INFO", "event ignored", reason=upload.reason, event_id=event["id"])
        return
    runtime = _runtime_once()
    if is_too_old(upload.event_time, started, runtime.settings.max_event_age_seconds):
        log("WARNING", "event too old; dropped without scoring", **upload.log_fields())
        return
    try:
        if runtime.objects.info(upload.bucket, output_names(upload).report) is not None:
            log("INFO", "upload already scored; nothing to do", **upload.log_fields())
            return
        _score(upload, runtime, started)
    except (ObjectStoreUnavailable, ModelUnavailable) as exc:
        log(
            "WARNING",
            "upload not scored; the event will be retried",
            error=str(exc),
            **upload.log_fields(),
        )
        raise


@dataclass
class _Runtime:
    settings: Settings
    models: ModelStore
    objects: ObjectStore

    @property
    def options(self) -> Options:
        return Options(interval=self.settings.upload_interval_level)


def _make_runtime() -> _Runtime:
    """Settings, model store and storage client, made once per process on first use."""
    settings = settings_module.from_env()
    timeout, emulator = settings.storage_timeout_seconds, settings.storage_emulator_host
    backend = open_backend(settings.model_store, timeout, emulator)
    models = ModelStore(backend, settings.model_refresh_seconds)
    return _Runtime(settings, models, ObjectStore(timeout, emulator))


_runtime_once = once(_make_runtime)


def _score(upload: Upload, runtime: _Runtime, started: datetime) -> None:
    """Stage, publish, report: the report is the last thing written, or nothing is."""
    laps = Laps()
    model: LoadedModel | None = None
    tally: Tally | None = None
    problem: FileProblem | None = None
    try:
        if not upload.known_model:
            raise FileProblem(
                UNKNOWN_MODEL,
                f"there is no model named {upload.model}; upload into incoming/<model>/ "
                f"with one of: {', '.join(SCHEMAS)}",
            )
        model = runtime.models.get(upload.model)
        laps.lap("model_seconds")
        log("INFO", "scoring upload", model_version=model.version, **upload.log_fields())
        staging = staging_names(upload, uuid.uuid4().hex)
        identity = output_identity(model, runtime.options)
        tally = _stage(upload, runtime, model, staging, identity)
        laps.lap("scoring_seconds")
        try:
            _publish_outputs(runtime.objects, upload, staging, identity)
        finally:
            _remove(runtime.objects, upload.bucket, staging)
        laps.lap("publishing_seconds")
    except FileProblem as found:
        problem = found
        laps.lap("seconds_until_the_problem")
    document = report(
        upload,
        model_version=model.version if model else None,
        options=runtime.options,
        tally=tally,
        problem=problem,
        timings={
            "started": started.isoformat(),
            "event_age_seconds": _age(upload, started),
            **laps.seconds,
        },
    )
    written = _create_report(runtime.objects, upload, encode_report(document))
    _log_outcome(upload, document, written)


def _stage(
    upload: Upload,
    runtime: _Runtime,
    model: LoadedModel,
    staging: OutputNames,
    identity: Mapping[str, str],
) -> Tally:
    """Stream the input through the model into this attempt's staging objects."""
    objects, bucket = runtime.objects, upload.bucket
    scored = objects.writer(bucket, staging.scored, CSV, identity)
    rejected = objects.writer(bucket, staging.rejected, CSV, identity)
    try:
        with objects.reader(bucket, upload.name, upload.generation) as source:
            tally = score_stream(
                source,
                model,
                runtime.options,
                runtime.settings.upload_chunk_rows,
                scored.write,
                rejected.write,
            )
    except ObjectAbsent as exc:
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
            except AlreadyExists:
                existing = objects.info(upload.bucket, destination)
        if existing is not None and existing.metadata != identity:
            raise FileProblem(
                OUTPUT_CONFLICT,
                f"{destination} was already written by an earlier attempt with another model "
                "or interval setting, and is left as it was; upload the file again to score "
                "it with the current model",
            )


def _create_report(objects: ObjectStore, upload: Upload, data: bytes) -> bool:
    """True if this attempt's report was written; False if another attempt's came first."""
    try:
        objects.create_if_absent(upload.bucket, output_names(upload).report, data, JSON)
    except AlreadyExists:
        return False
    return True


def _remove(objects: ObjectStore, bucket: str, staging: OutputNames) -> None:
    for name in (staging.scored, staging.rejected):
        try:
            objects.delete(bucket, name)
        except ObjectStoreUnavailable as exc:
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
