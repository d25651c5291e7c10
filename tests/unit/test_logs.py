from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from shared.logs import log, trace_fields

TRACE = "105445aa7843bc8bf206b12000100000"


def lines(captured: str) -> list[dict[str, object]]:
    assert captured.endswith("\n")
    return [orjson.loads(line) for line in captured.splitlines()]


def test_log_writes_one_json_line_with_severity_message_and_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log("INFO", "model loaded", model="customer_needs", rows=3, seconds=0.25)

    captured = capsys.readouterr()
    [entry] = lines(captured.out)
    assert captured.err == ""
    assert entry["severity"] == "INFO"
    assert entry["message"] == "model loaded"
    assert entry["model"] == "customer_needs"
    assert entry["rows"] == 3
    assert entry["seconds"] == 0.25
    assert list(entry)[:3] == ["severity", "message", "time"]


def test_log_time_is_utc_rfc3339_with_microseconds(capsys: pytest.CaptureFixture[str]) -> None:
    before = datetime.now(UTC)

    log("WARNING", "slow")

    [entry] = lines(capsys.readouterr().out)
    time = str(entry["time"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", time)
    logged = datetime.fromisoformat(time.replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= logged <= datetime.now(UTC) + timedelta(seconds=1)


def test_each_call_is_exactly_one_line_even_with_newlines_in_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log("ERROR", "first\nline", exc_info="Traceback\n  File x\nValueError")
    log("INFO", "second")

    entries = lines(capsys.readouterr().out)
    assert [entry["message"] for entry in entries] == ["first\nline", "second"]
    assert entries[0]["exc_info"] == "Traceback\n  File x\nValueError"


def test_values_that_are_not_json_are_written_as_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log("INFO", "stored", path=Path("/models/x"), nested={"ok": [1, None]})

    [entry] = lines(capsys.readouterr().out)
    assert entry["path"] == "/models/x"
    assert entry["nested"] == {"ok": [1, None]}


def test_lines_from_many_threads_never_interleave(capsys: pytest.CaptureFixture[str]) -> None:
    def write(thread: int) -> None:
        for index in range(20):
            log("INFO", "tick", thread=thread, index=index, padding="x" * 500)

    threads = [threading.Thread(target=write, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    entries = lines(capsys.readouterr().out)
    assert len(entries) == 160
    assert {(entry["thread"], entry["index"]) for entry in entries} == {
        (thread, index) for thread in range(8) for index in range(20)
    }


def test_trace_header_becomes_cloud_logging_fields() -> None:
    fields = trace_fields(f"{TRACE}/1234567890;o=1", "my-project")

    assert fields == {
        "logging.googleapis.com/trace": f"projects/my-project/traces/{TRACE}",
        "logging.googleapis.com/spanId": "1234567890",
        "logging.googleapis.com/trace_sampled": True,
    }


@pytest.mark.parametrize("header", [f"{TRACE}/1;o=0", f"{TRACE}/1"])
def test_a_trace_that_is_not_sampled(header: str) -> None:
    fields = trace_fields(header, "p")

    assert fields["logging.googleapis.com/trace_sampled"] is False
    assert fields["logging.googleapis.com/spanId"] == "1"


@pytest.mark.parametrize("header", [TRACE, f"{TRACE}/", f"{TRACE}/span;o=1", f"{TRACE}/-1"])
def test_a_trace_without_a_usable_span_keeps_the_trace_only(header: str) -> None:
    fields = trace_fields(header, "p")

    assert fields["logging.googleapis.com/trace"] == f"projects/p/traces/{TRACE}"
    assert "logging.googleapis.com/spanId" not in fields


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "/1;o=1",
        ";o=1",
        "not a trace/1;o=1",
        "../../etc/1",
        '"},{"x/1',
        f"{TRACE}-{TRACE}/1",
        "a" * 65 + "/1",
    ],
)
def test_garbage_trace_headers_are_ignored(header: str | None) -> None:
    assert trace_fields(header, "my-project") == {}


@pytest.mark.parametrize("project", [None, ""])
def test_no_trace_fields_without_a_project(project: str | None) -> None:
    assert trace_fields(f"{TRACE}/1;o=1", project) == {}
