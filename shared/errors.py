"""Errors that cross the HTTP boundary, each carrying the status it maps to.

    MarketcastError (500 internal)
    ├── BadRequest (400 bad_request)              malformed JSON or CSV
    ├── NotFound (404 not_found)                  unknown path
    ├── MethodNotAllowed (405 method_not_allowed) carries the allowed methods
    ├── OriginNotAllowed (403 origin_not_allowed) CORS preflight from an origin not configured
    ├── PayloadTooLarge (413 payload_too_large)   body bytes or instance count over the limit
    │   └── BodyTooLarge                          body bytes over it: the connection is closed
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── InvalidInput (422 invalid_input)          carries one Problem per row and field at fault
    └── ModelUnavailable (503 model_unavailable)  carries Retry-After
        ├── ModelNotFound                         nothing published at the location
        ├── ArtifactRejected                      sha256 mismatch or foreign scikit-learn version
        └── StorageUnavailable                    storage failed or did not answer in time
    PublishConflict (409 conflict)                another publisher moved current.json first
    EventNotDone (500 event_not_done)             an event's work did not finish: deliver it again

An error with a `retry_after` gets a Retry-After header.

One handler at the HTTP edge maps every one of them to a JSON body; nothing else turns an
exception into a response.

An error's `message` is what the caller is told. `where` names what failed inside (a key, a
folder, a bucket) for the log only: `str(error)` gives both, for log lines.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson


@dataclass(frozen=True)
class Problem:
    """One field of one row at fault: `row` is the 0-based data row, `field` the column; `line`,
    for a CSV row, the 1-based line a spreadsheet shows it on (the header's is 1).

    `reason` never holds a value the caller sent (uploads count rows by it); `received` is the
    value at fault, shortened (`shared.validation` decides how), or None when there is none to
    show."""

    row: int | None
    field: str | None
    reason: str
    received: str | int | float | None = None
    line: int | None = None

    def to_dict(self) -> dict[str, object]:
        item: dict[str, object] = {"row": self.row, "field": self.field, "reason": self.reason}
        if self.received is not None:
            item["received"] = self.received
        if self.line is not None:
            item["line"] = self.line
        return item

    def place(self) -> str:
        """Where the fault is, in words: `row 2 (line 4), age`; "" when nowhere in particular."""
        row = None if self.row is None else f"row {self.row}"
        if row and self.line is not None:
            row += f" (line {self.line})"
        return ", ".join(part for part in (row, self.field) if part)

    def said(self) -> str:
        """The reason, and the value received when there is one, for a message of one line."""
        if self.received is None:
            return self.reason
        return f"{self.reason} (received {orjson.dumps(self.received).decode()})"


def one_line(message: str, problems: tuple[Problem, ...], limit: int = 10) -> str:
    """The message and its problems in one line, for protocols whose errors are one string."""
    details = "; ".join(
        f"{p.place()}: {p.said()}" if p.place() else p.said() for p in problems[:limit]
    )
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return f"{message}: {details}{more}" if details else message


class MarketcastError(Exception):
    """An unexpected failure (500). The message is safe to show; details stay in the logs."""

    status = 500
    code = "internal"
    retry_after: int | None = None  # seconds, when waiting that long can help

    def __init_subclass__(cls, *, status: int | None = None, code: str | None = None) -> None:
        """The status and code go in the class line: `BadRequest(..., status=400, ...)`."""
        super().__init_subclass__()
        if status is not None:
            cls.status = status
        if code is not None:
            cls.code = code

    def __init__(
        self, message: str, problems: tuple[Problem, ...] = (), *, where: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems
        self.where = where

    def __str__(self) -> str:
        """For log lines: the message, and where it happened when that is known."""
        return f"{self.message} ({self.where})" if self.where else self.message


class BadRequest(MarketcastError, status=400, code="bad_request"):
    """The body cannot be read as the declared format (400)."""


class NotFound(MarketcastError, status=404, code="not_found"):
    """No such path on this function (404)."""


class OriginNotAllowed(MarketcastError, status=403, code="origin_not_allowed"):
    """A CORS preflight from an origin that is not configured (403)."""


class MethodNotAllowed(MarketcastError, status=405, code="method_not_allowed"):
    """The path exists but not for this method (405); `allow` feeds the Allow header."""

    def __init__(self, message: str, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(MarketcastError, status=413, code="payload_too_large"):
    """The body is over the byte limit or holds more instances than allowed (413)."""


class BodyTooLarge(PayloadTooLarge):
    """The body's bytes are over MAX_BODY_BYTES (413). The answer closes the connection: the
    rest of the body may still be on its way, and is not read past the drain allowance."""


class UnsupportedMediaType(MarketcastError, status=415, code="unsupported_media_type"):
    """The Content-Type is neither JSON nor CSV (415)."""


class InvalidInput(MarketcastError, status=422, code="invalid_input"):
    """Rows or options that break the model's schema (422); every fault is listed."""


class ModelUnavailable(MarketcastError, status=503, code="model_unavailable"):
    """The model cannot be served right now (503); clients retry after `retry_after` s."""

    retry_after = 5


class ModelNotFound(ModelUnavailable):
    """Nothing is published for the model at the configured store (503)."""


class ArtifactRejected(ModelUnavailable):
    """The artifact failed its sha256 or scikit-learn version check; never unpickled (503)."""


class StorageUnavailable(ModelUnavailable):
    """Storage failed or did not answer in time (503): the model store or a data bucket.

    Nothing is wrong with the request or the event; it can be retried as a whole.
    """


class PublishConflict(MarketcastError, status=409, code="conflict"):
    """Another publisher moved current.json first (409); re-read it and decide again."""


class EventNotDone(MarketcastError, status=500, code="event_not_done"):
    """An event function's work did not finish: storage or the model store failed, or another
    delivery is working on the same upload (500). Eventarc delivers the event again on any
    non-2xx answer; 500 is what these functions have always answered then."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
