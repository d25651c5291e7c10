"""What a sender gets from score_upload and retrain_on_upload, driven from outside against real
functions-framework servers and the storage emulator.

- A request that is not a CloudEvent (JSON of another shape, not JSON, empty, a legacy
  background event, GET, too large) gets a JSON 4xx that repeats none of its headers or body,
  on the default stack and with FUNCTION_USE_ASGI=true alike.
- A CloudEvent with any field malformed (any JSON type, other Unicode digits, huge numbers,
  empty strings, missing keys) is acknowledged with exactly one log line, never a 5xx.
- An event whose work cannot finish gets a JSON 500 naming nothing of ours, so it comes again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests
from cloudevents.http import from_http
from hypothesis import event, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import StartFunction, launcher, new_bucket
from tests.integration.support import (
    FINALIZED,
    FakeGcs,
    FunctionServer,
    free_port,
    list_objects,
    post_event,
    put_object,
    storage_event,
)

FUNCTIONS = ("score_upload", "retrain_on_upload")
FOLDERS = {
    "score_upload": "incoming/customer_needs/",
    "retrain_on_upload": "training/customer_needs/",
}
STACKS = {"default": {}, "asgi": {"FUNCTION_USE_ASGI": "true"}}
TOKEN = f"token-{uuid.uuid4().hex}"
SECRET = f"secret-{uuid.uuid4().hex}"
SENT_WITH = {"Authorization": f"Bearer {TOKEN}", "Cookie": f"session={TOKEN}"}
MAX_EVENT_BYTES = 64 * 1024  # what the functions accept (functions/events.py)
CSV = b"age,gender,income\n35,female,52000\n"


# Servers and what they log


@pytest.fixture(scope="module")
def servers(
    gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[tuple[str, str], FunctionServer]]:
    """Both event functions on both stacks, with the signature type Cloud Run sets for event
    triggers. No delivery sent to these gets as far as the model store."""
    with launcher(gcs, tmp_path_factory.mktemp("deliveries")) as start:
        yield {
            (target, stack): start(target, FUNCTION_SIGNATURE_TYPE="cloudevent", **env)
            for target in FUNCTIONS
            for stack, env in STACKS.items()
        }


@dataclass
class Answer:
    response: requests.Response
    logged: list[dict[str, Any]]  # the log lines written while it was answered


def send(server: FunctionServer, method: str = "POST", **request: Any) -> Answer:
    """One request, and the server's log lines from it (requests are sent one at a time)."""
    before = len(server.log_lines())
    response = requests.request(method, server.url, timeout=60, **request)
    return Answer(response, [orjson.loads(line) for line in server.log_lines()[before:]])


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def assert_refused(answer: Answer, status: int, code: str, *sent: str) -> dict[str, Any]:
    """A JSON error in the native shape, one log line saying so, and nothing of `sent`."""
    response = answer.response
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"code", "message", "details"}
    assert [line["message"] for line in answer.logged] == ["delivery refused"]
    echoed = [response.text, str(response.headers), *map(str, answer.logged)]
    assert not [s for s in (TOKEN, SECRET, *sent) for text in echoed if s in text]
    return dict(error)


# Requests that are not CloudEvents


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("target", FUNCTIONS)
def test_json_that_is_not_a_cloudevent_gets_a_json_400_that_repeats_nothing_sent(
    servers: dict[tuple[str, str], FunctionServer], target: str, stack: str
) -> None:
    body = {"password": SECRET, "bucket": "data", "name": f"{FOLDERS[target]}q1.csv"}

    answer = send(servers[target, stack], json=body, headers=SENT_WITH)

    error = assert_refused(answer, 400, "bad_request", "python-requests", "Bearer")
    assert "ce-specversion" in error["message"]
    assert "application/cloudevents+json" in error["message"]
    assert {d["field"] for d in error["details"]} == {"specversion", "id", "source", "type"}


LEGACY = {  # a background event, as first-generation Cloud Functions delivered them
    "context": {
        "eventId": "1234567890",
        "timestamp": "2026-11-28T11:00:00.000Z",
        "eventType": "google.storage.object.finalize",
        "resource": {"service": "storage.googleapis.com", "name": "projects/_/buckets/data"},
    },
    "data": {"bucket": "data", "name": "incoming/customer_needs/q1.csv", "generation": "17"},
}
NOT_CLOUDEVENTS = {
    "not JSON": {"data": f"\x00\xff not JSON {SECRET}".encode("latin-1")},
    "an empty body": {"data": b""},
    "a JSON array": {"json": [SECRET]},
    "a legacy background event": {"json": LEGACY},
    "a structured event without its type": {
        "data": json.dumps({"specversion": "1.0", "id": SECRET, "source": "//x"}),
        "headers": {"Content-Type": "application/cloudevents+json"},
    },
}


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("target", FUNCTIONS)
@pytest.mark.parametrize("case", NOT_CLOUDEVENTS)
def test_other_bodies_are_refused_with_a_json_400(
    servers: dict[tuple[str, str], FunctionServer], target: str, stack: str, case: str
) -> None:
    request = NOT_CLOUDEVENTS[case]
    headers = {**SENT_WITH, **request.get("headers", {})}

    answer = send(servers[target, stack], **{**request, "headers": headers})

    assert_refused(answer, 400, "bad_request", "eventId", "projects/_/buckets")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("target", FUNCTIONS)
def test_a_binary_event_missing_a_header_is_told_which(
    servers: dict[tuple[str, str], FunctionServer], target: str, stack: str
) -> None:
    headers = {**SENT_WITH, "ce-specversion": "1.0", "ce-id": SECRET, "ce-type": FINALIZED}

    answer = send(servers[target, stack], data=b"{}", headers=headers)

    error = assert_refused(answer, 400, "bad_request")
    assert error["details"] == [{"row": None, "field": "ce-source", "reason": "missing"}]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("target", FUNCTIONS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_get_a_json_405(
    servers: dict[tuple[str, str], FunctionServer], target: str, stack: str, method: str
) -> None:
    answer = send(servers[target, stack], method, headers=SENT_WITH, data=SECRET)

    assert_refused(answer, 405, "method_not_allowed")
    assert answer.response.headers["Allow"] == "POST"


def halves(body: bytes) -> Iterator[bytes]:
    """The body in two pieces, as a chunked request of unknown length."""
    yield body[: len(body) // 2]
    yield body[len(body) // 2 :]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("target", FUNCTIONS)
@pytest.mark.parametrize("length", ["declared", "chunked"])
def test_a_body_over_the_limit_gets_a_json_413(
    servers: dict[tuple[str, str], FunctionServer], target: str, stack: str, length: str
) -> None:
    data = {"bucket": "data", "name": f"{FOLDERS[target]}q1.csv", "padding": SECRET * 2000}
    event = {"specversion": "1.0", "id": "big", "source": "//x", "type": FINALIZED, "data": data}
    oversized = json.dumps(event).encode()
    assert len(oversized) > MAX_EVENT_BYTES
    headers = {**SENT_WITH, "Content-Type": "application/cloudevents+json"}

    body = oversized if length == "declared" else halves(oversized)
    answer = send(servers[target, stack], data=body, headers=headers)

    assert_refused(answer, 413, "payload_too_large")


# CloudEvents with malformed fields

MISSING = object()  # a key left out
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
HOSTILE = st.one_of(
    JSON_VALUES,
    st.text(
        st.characters(categories=["Nd", "No"]), min_size=1, max_size=20
    ),  # other digits: "²"...
    st.integers(min_value=2**63 - 1, max_value=10**1000),
    st.integers(max_value=0),
    st.integers(min_value=2**63 - 1, max_value=10**1000).map(str),
    st.sampled_from(["9" * 5000, "", " ", "\ud800", "a\udfffb", "1" + " " * 3, "0", "00017"]),
    st.just(MISSING),
)
GENERATIONS = st.integers(min_value=1, max_value=2**63 - 1)
# Names that are valid but never an upload to either function, so that every event is ignored
# whatever its other fields hold.
NOT_UPLOADS = [
    "elsewhere/customer_needs/q1.csv",
    "incoming/customer_needs/",
    "training/customer_needs/",
    "incoming/customer_needs/notes.txt",
    "training/market_trend/notes.txt",
]


def field(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Hostile one time in four: mostly valid, so that the checks after a field's are reached."""
    return st.integers(0, 3).flatmap(lambda n: HOSTILE if n == 0 else valid)


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[dict[str, bytes], bytes, list[str]]:
    """A CloudEvent in binary or structured mode whose fields are each valid or hostile (now and
    then a required attribute too): headers, body, and the strings it holds."""
    attributes: dict[str, Any] = {
        "specversion": "1.0",
        "source": "//storage.googleapis.com/projects/_/buckets/data",
        "id": draw(field(st.from_regex(r"[0-9]{16}", fullmatch=True))),
        "type": draw(field(st.just(FINALIZED))),
        "time": draw(field(st.just(now()))),
    }
    if draw(st.integers(0, 5)) == 0:
        attributes[draw(st.sampled_from(["specversion", "source"]))] = draw(HOSTILE)
    data = {
        "bucket": draw(field(st.sampled_from(["data", "data-bucket-1", "a.b.c"]))),
        "name": draw(field(st.sampled_from(NOT_UPLOADS))),
        "generation": draw(field(GENERATIONS | GENERATIONS.map(str))),
        "metageneration": "1",
    }
    data = draw(field(st.just(data)))
    mode = draw(st.sampled_from(["binary", "structured"]))
    attributes = {key: value for key, value in attributes.items() if value is not MISSING}
    if isinstance(data, dict):
        data = {key: value for key, value in data.items() if value is not MISSING}
    if mode == "binary":
        headers = {f"ce-{key}": header_value(value) for key, value in attributes.items()}
        body = b"" if data is MISSING else json.dumps(data).encode()
        sent = [value.decode() for value in headers.values()]
        headers["content-type"] = b"application/json"
    else:
        envelope = {**attributes, **({} if data is MISSING else {"data": data})}
        headers = {"content-type": b"application/cloudevents+json"}
        body, sent = json.dumps(envelope).encode(), list(strings(*attributes.values()))
    return headers, body, [text for text in [*sent, *strings(data)] if len(text) >= 8]


def header_value(value: object) -> bytes:
    """An attribute as a ce-* header: any text, with what HTTP cannot carry replaced."""
    text = value if isinstance(value, str) else json.dumps(value)
    return "".join(c if c.isprintable() else "?" for c in text).strip().encode()


def strings(*values: object) -> Iterator[str]:
    """The strings among `values`, and in their lists and values (keys are our field names)."""
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from strings(*value.values())
        elif isinstance(value, list):
            yield from strings(*value)


def reads_as_cloudevent(headers: dict[str, bytes], body: bytes) -> bool:
    """Whether the CloudEvents SDK reads the delivery as an event at all."""
    try:
        from_http({name: value.decode("latin-1") for name, value in headers.items()}, body)
    except Exception:  # noqa: BLE001 (any failure of the SDK's parsing means: not an event)
        return False
    return True


@pytest.mark.parametrize("target", FUNCTIONS)
@settings(max_examples=300, deadline=None)
@given(delivery=deliveries())
def test_an_event_with_any_field_malformed_is_acknowledged_with_one_log_line(
    servers: dict[tuple[str, str], FunctionServer],
    target: str,
    delivery: tuple[dict[str, bytes], bytes, list[str]],
) -> None:
    headers, body, held = delivery

    answer = send(servers[target, "default"], data=body, headers=headers)

    status = answer.response.status_code
    assert status < 500, answer.response.text
    assert len(answer.logged) == 1, answer.logged
    line = answer.logged[0]
    event(f"{status} {line.get('reason') or line.get('error')}")  # what was covered, with -s
    if reads_as_cloudevent(headers, body):
        assert status == 200, answer.response.text
        assert line["message"] == "event ignored"
    else:
        assert 400 <= status < 500
        assert line["message"] == "delivery refused"
    told = [answer.response.text, *(str(v) for k, v in line.items() if k != "event_id")]
    assert not [text for text in held for said in told if text in said]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("target", FUNCTIONS)
@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_a_generation_of_superscript_two_is_acknowledged_and_nothing_is_written(
    gcs: FakeGcs,
    servers: dict[tuple[str, str], FunctionServer],
    target: str,
    stack: str,
    mode: str,
) -> None:
    bucket, name = new_bucket(gcs), f"{FOLDERS[target]}crm/q1.csv"
    put_object(gcs, bucket, name, CSV)
    event = storage_event(bucket, name, 1, event_id="squared", time=now())
    event.data["generation"] = "²"  # type: ignore[attr-defined]
    server = servers[target, stack]
    before = len(server.log_lines())

    response = post_event(server.url, event, mode)

    assert response.status_code == 200, response.text
    logged = [orjson.loads(line) for line in server.log_lines()[before:]]
    assert [(e["message"], e["event_id"]) for e in logged] == [("event ignored", "squared")]
    assert "generation" in logged[0]["reason"]
    assert list(list_objects(gcs, bucket)) == [name]


@pytest.mark.parametrize("target", FUNCTIONS)
def test_binary_data_holding_a_number_python_cannot_read_is_acknowledged(
    servers: dict[tuple[str, str], FunctionServer], target: str
) -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "digits", "ce-source": "//x", "ce-type": FINALIZED}
    name = f"{FOLDERS[target]}q1.csv"
    body = b'{"bucket": "data", "name": "%s", "generation": 1%s}' % (name.encode(), b"0" * 5000)

    answer = send(servers[target, "default"], data=body, headers=headers)

    assert answer.response.status_code == 200, answer.response.text
    assert [(e["message"], e["event_id"]) for e in answer.logged] == [("event ignored", "digits")]


# Work that cannot finish


@pytest.mark.parametrize("target", FUNCTIONS)
def test_storage_down_gets_a_json_500_that_names_nothing_of_ours(
    start_function: StartFunction, target: str
) -> None:
    port = free_port()  # nothing listens here: storage is down
    bucket = f"data-{uuid.uuid4().hex[:12]}"
    server = start_function(
        target,
        FUNCTION_SIGNATURE_TYPE="cloudevent",
        MODEL_STORE=f"gs://{bucket}/models",
        STORAGE_EMULATOR_HOST=f"http://127.0.0.1:{port}",
    )
    name = f"{FOLDERS[target]}crm/q1.csv"
    event = storage_event(bucket, name, 17, event_id="outage", time=now())
    before = len(server.log_lines())

    response = post_event(server.url, event, "binary")

    assert response.status_code == 500
    assert response.headers["Retry-After"] == "5"
    error = response.json()["error"]
    assert error["code"] == "event_not_done"
    assert not [s for s in (bucket, name, str(port), "127.0.0.1") if s in response.text]
    logged = [orjson.loads(line) for line in server.log_lines()[before:]]
    assert [e["event_id"] for e in logged] == ["outage"]
    assert logged[0]["severity"] == "WARNING"
