"""The edge both event functions share: one delivery of a Cloud Storage event in, one upload's
work done, one JSON answer out.

`score_upload` and `retrain_on_upload` are triggered by
`google.cloud.storage.object.v1.finalized`: Eventarc POSTs each event as a CloudEvent, at least
once, sometimes concurrently, and retries it on any answer but a 2xx. The work on each upload
generation ends with its report.json, created last.

Both are registered as HTTP functions on functions-framework's ASGI stack and read the
CloudEvent themselves (`deliver`): the framework's own CloudEvent parsing answers a delivery it
cannot read with a page of its own that repeats the request's headers and body, and gives the
function no say. Here every answer is JSON from `error_reply`, and echoes nothing received:

    not a POST                          405 method_not_allowed (Allow: POST)
    a body over MAX_EVENT_BYTES         413 payload_too_large, the rest left unread
    not a CloudEvent (binary or         400 bad_request, naming the attributes missing and
      structured mode)                      saying what a delivery must look like
    a CloudEvent                        200, after `on_upload`, which runs on a worker thread
                                        (it waits on storage and training, seconds to minutes)
    its work did not finish             500 event_not_done (Retry-After after a storage fault)
    anything unexpected                 500 internal, the traceback in the log

`on_upload` does the same around either function's work:

1. An event that names nothing for the function (any field missing or malformed) is logged in
   one line and acknowledged.
2. An event older than MAX_EVENT_AGE_SECONDS is dropped with a warning and acknowledged.
3. report.json already there: the work is done; nothing else happens.
4. A storage or model store failure (or one the function names, `retry_on`) is logged and
   raised as EventNotDone, so the platform delivers the event again.
"""

from __future__ import annotations

import asyncio
import json
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

import orjson
from cloudevents.http import from_http
from cloudevents.http.event import CloudEvent
from starlette.requests import Request
from starlette.responses import Response

from functions.http import read_body
from functions.http_io import EVERY_ANSWER, Reply, error_reply, json_reply
from shared import settings as settings_module
from shared.errors import (
    BadRequest,
    EventNotDone,
    MarketcastError,
    MethodNotAllowed,
    ModelUnavailable,
    Problem,
    StorageUnavailable,
)
from shared.logs import log
from shared.once import once
from shared.settings import Settings
from shared.store import ModelStore, ObjectStore, open_backend
from shared.uploads import Ignored, Upload, is_too_old, readable_id

U = TypeVar("U", bound=Upload)
STORAGE_FAILURES: tuple[type[Exception], ...] = (StorageUnavailable, ModelUnavailable)
# A Cloud Storage event is a few KB: the object's metadata, its custom part at most 8 KiB.
MAX_EVENT_BYTES = 64 * 1024
REQUIRED_ATTRIBUTES = ("specversion", "id", "source", "type")
NOT_A_CLOUDEVENT = (
    "the request is not a CloudEvent. Deliver one in binary mode (headers ce-specversion: 1.0, "
    "ce-id, ce-source and ce-type; the Cloud Storage object as the JSON body) or in structured "
    "mode (Content-Type: application/cloudevents+json; a JSON object with specversion, id, "
    "source, type and data). Legacy background events are not accepted."
)
NOT_DONE = "the upload's work did not finish; the event must be delivered again"


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


Work = Callable[[U, Runtime, datetime], None]


async def deliver(request: Request, edge: Edge[U], work: Work[U]) -> Response:
    """Answer one delivery: read its CloudEvent, do `work` on the upload it names; see above."""
    try:
        reply = await _answer(request, edge, work)
    except Exception:  # noqa: BLE001 (the last line of defence: log it, answer a clean 500)
        log("ERROR", "unhandled error", exc_info=traceback.format_exc())
        reply = error_reply(MarketcastError("internal error"))
    reply.headers.update(EVERY_ANSWER)
    return Response(reply.body, reply.status, reply.headers, reply.media_type)


async def _answer(request: Request, edge: Edge[U], work: Work[U]) -> Reply:
    try:
        event = await read_event(request)
    except MarketcastError as refused:
        log("WARNING", "delivery refused", error=refused.code, status=refused.status)
        return error_reply(refused)
    try:
        await asyncio.to_thread(on_upload, event, edge, work)
    except EventNotDone as not_done:  # on_upload has logged it, with the upload it is about
        return error_reply(not_done)
    return json_reply({"status": "acknowledged"})


async def read_event(request: Request) -> CloudEvent:
    """The CloudEvent a POST carries, its body read within MAX_EVENT_BYTES."""
    if request.method != "POST":
        message = f"{request.method} is not allowed; deliver events by POST"
        raise MethodNotAllowed(message, ("POST",))
    body = await read_body(request, request.headers, MAX_EVENT_BYTES)
    return parse_cloudevent(request.headers, body)


def parse_cloudevent(headers: Mapping[str, str], body: bytes) -> CloudEvent:
    """The CloudEvent in binary or structured mode, or BadRequest naming what is missing."""
    try:
        return from_http(headers, body, data_unmarshaller=_event_data)
    # from_http only parses what was sent: whatever it raises (its own errors, or a TypeError
    # or AttributeError on odd JSON) means there is no CloudEvent to read.
    except Exception as exc:
        problems = tuple(Problem(None, name, "missing") for name in _missing(headers, body))
        raise BadRequest(NOT_A_CLOUDEVENT, problems) from exc


def _event_data(body: str | bytes | None) -> object:
    """The data as JSON, or the bytes as sent when they do not read as JSON (a number past
    Python's 4,300 digits, say): an event with such data names no object, so it is
    acknowledged rather than refused."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return body


def _missing(headers: Mapping[str, str], body: bytes) -> list[str]:
    """The required attributes a delivery lacks, by name: ce-* headers in binary mode (a
    ce-specversion header), else the keys of a structured body."""
    if "ce-specversion" in headers:
        return [f"ce-{name}" for name in REQUIRED_ATTRIBUTES if f"ce-{name}" not in headers]
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(envelope, dict):
        return []
    return [name for name in REQUIRED_ATTRIBUTES if name not in envelope]


def on_upload(event: CloudEvent, edge: Edge[U], work: Work[U]) -> None:
    """`work` on the upload the event names, unless there is nothing to do; see above."""
    started = datetime.now(UTC)
    attributes = event.get_attributes()
    upload = edge.parse(attributes, event.get_data())
    if isinstance(upload, Ignored):
        event_id = readable_id(attributes.get("id"))
        log("INFO", "event ignored", reason=upload.reason, event_id=event_id)
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
        retry_after = exc.retry_after if isinstance(exc, MarketcastError) else None
        raise EventNotDone(NOT_DONE, retry_after) from exc
