"""What a caller is told of a storage failure names none of our keys, folders or buckets."""

from __future__ import annotations

import orjson
import pytest

from functions.http_io import Style, error_reply
from shared.errors import StorageUnavailable

WHAT = "read customer_needs/current.json from gs://private-bucket/models/"


@pytest.mark.parametrize("style", list(Style))
def test_the_reply_to_a_storage_failure_names_nothing_of_ours(style: Style) -> None:
    error = StorageUnavailable("the model store did not answer in time", where=WHAT)

    reply = error_reply(error, style)

    assert reply.status == 503
    assert reply.headers["Retry-After"] == str(error.retry_after)
    assert "the model store did not answer in time" in reply.body.decode()
    assert "private-bucket" not in reply.body.decode() + orjson.dumps(reply.headers).decode()
    assert "private-bucket" in str(error)  # the log line still says where
