"""The storage budget: every attempt of a call gets only what is left of its deadline, and
what a caller is told of a storage failure names none of our keys, folders or buckets."""

from __future__ import annotations

import time

import orjson
import pytest
import requests

from functions.http_io import Style, error_reply
from shared.errors import StorageUnavailable
from shared.store import Deadline
from shared.store._cloud import Cloud, Timeout

WHAT = "read customer_needs/current.json from gs://private-bucket/models/"


class FailingAttempts:
    """Attempts that each fail as a dropped connection does, noting the timeouts they got."""

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.timeouts: list[Timeout] = []
        self.left_at_start: list[float] = []  # measured just after the timeouts were chosen
        self.left_at_end = [deadline.left()]  # before the first attempt, then after each

    def __call__(self, timeout: Timeout) -> bytes:
        self.left_at_start.append(self.deadline.left())
        self.timeouts.append(timeout)
        self.left_at_end.append(self.deadline.left())
        raise requests.exceptions.ConnectionError("connection dropped")


def cloud() -> Cloud:
    return Cloud(timeout_seconds=60.0, emulator_host=None, subject="the model store")


def test_every_attempt_gets_only_what_is_left_of_the_deadline() -> None:
    deadline = Deadline.after(0.5)
    attempts = FailingAttempts(deadline)

    with pytest.raises(StorageUnavailable) as caught:
        cloud().within(deadline, WHAT, attempts)

    assert len(attempts.timeouts) >= 2  # retried, and not for the store's 60 s
    for (connect, read), before, at_start in zip(
        attempts.timeouts, attempts.left_at_end, attempts.left_at_start, strict=False
    ):
        # What was left when the attempt was set up: no attempt may outlast the deadline.
        assert at_start <= read <= before
        assert connect == min(read, 3.0)
    assert caught.value.message == "the model store did not answer in time"
    assert caught.value.where.startswith(WHAT)


def test_a_spent_deadline_fails_at_once_without_an_attempt() -> None:
    deadline = Deadline(time.monotonic() - 0.001)
    attempts = FailingAttempts(deadline)

    with pytest.raises(StorageUnavailable) as caught:
        cloud().within(deadline, WHAT, attempts)

    assert attempts.timeouts == []
    assert caught.value.message == "the model store did not answer in time"


def test_a_call_not_safe_to_repeat_is_tried_once() -> None:
    deadline = Deadline.after(30.0)
    attempts = FailingAttempts(deadline)

    with pytest.raises(StorageUnavailable) as caught:
        cloud().within(deadline, WHAT, attempts, retry=False)

    assert len(attempts.timeouts) == 1
    assert caught.value.message == "the model store is not available"
    assert caught.value.where == f"{WHAT}: ConnectionError"


@pytest.mark.parametrize("style", list(Style))
def test_the_reply_to_a_storage_failure_names_nothing_of_ours(style: Style) -> None:
    error = StorageUnavailable("the model store did not answer in time", where=WHAT)

    reply = error_reply(error, style)

    assert reply.status == 503
    assert reply.headers["Retry-After"] == str(error.retry_after)
    assert "the model store did not answer in time" in reply.body.decode()
    assert "private-bucket" not in reply.body.decode() + orjson.dumps(reply.headers).decode()
    assert "private-bucket" in str(error)  # the log line still says where
