"""The edge both event functions share: a Cloud Storage event in, one upload's work done.

`score_upload` and `retrain_on_upload` are triggered by
`google.cloud.storage.object.v1.finalized`. Events arrive at least once, sometimes concurrently,
and the work on each upload generation ends with its report.json, created last. So both do the
same around their work:

1. An event that names nothing for the function is logged in one line and acknowledged.
2. An event older than MAX_EVENT_AGE_SECONDS is dropped with a warning and acknowledged.
3. report.json already there: the work is done; nothing else happens.
4. A storage or model store failure (or one the function names, `retry_on`) is logged and
   raised, so the platform delivers the event again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

from cloudevents.http.event import CloudEvent

from shared import settings as settings_module
from shared.errors import ModelUnavailable, StorageUnavailable
from shared.logs import log
from shared.once import once
from shared.settings import Settings
from shared.store import ModelStore, ObjectStore, open_backend
from shared.uploads import Ignored, Upload, is_too_old

U = TypeVar("U", bound=Upload)
STORAGE_FAILURES: tuple[type[Exception], ...] = (StorageUnavailable, ModelUnavailable)


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    models: ModelStore
    objects: ObjectStore


def _make_runtime() -> Runtime:
    settings = settings_module.from_env()
    timeout, emulator = settings.storage_timeout_seconds, settings.storage_emulator_host
    backend = open_backend(settings.model_store, timeout, emulator)
    models = ModelStore(backend, settings.model_refresh_seconds)
    return Runtime(settings, models, ObjectStore(timeout, emulator))


runtime = once(_make_runtime)
"""Settings, model store and storage client, made once per process on first use."""


class Wording(NamedTuple):
    """The messages of one function's log lines at the edge."""

    too_old: str  # an event dropped as too old
    already_done: str  # an upload whose report.json exists
    retried: str  # a failure raised so that the event comes again


@dataclass(frozen=True)
class Edge(Generic[U]):
    """What one event function takes from the bucket, and what it says at the edge."""

    parse: Callable[[Mapping[str, Any], object], U | Ignored]
    report_name: Callable[[U], str]
    wording: Wording
    retry_on: tuple[type[Exception], ...] = ()  # besides storage and model store failures


def on_upload(
    event: CloudEvent, edge: Edge[U], work: Callable[[U, Runtime, datetime], None]
) -> None:
    """`work` on the upload the event names, unless there is nothing to do; see above."""
    started = datetime.now(UTC)
    upload = edge.parse(event.get_attributes(), event.get_data())
    if isinstance(upload, Ignored):
        log("INFO", "event ignored", reason=upload.reason, event_id=event["id"])
        return
    current = runtime()
    if is_too_old(upload.event_time, started, current.settings.max_event_age_seconds):
        log("WARNING", edge.wording.too_old, **upload.log_fields())
        return
    try:
        if current.objects.info(upload.bucket, edge.report_name(upload)) is not None:
            log("INFO", edge.wording.already_done, **upload.log_fields())
            return
        work(upload, current, started)
    except (*STORAGE_FAILURES, *edge.retry_on) as exc:
        log("WARNING", edge.wording.retried, error=str(exc), **upload.log_fields())
        raise
