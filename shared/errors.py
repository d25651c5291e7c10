"""Errors that cross the HTTP boundary, each carrying the status it maps to.

    MarketcastError (500 internal)
    ├── BadRequest (400 bad_request)              malformed JSON or CSV
    ├── NotFound (404 not_found)                  unknown path
    ├── MethodNotAllowed (405 method_not_allowed) carries the allowed methods
    ├── OriginNotAllowed (403 origin_not_allowed) CORS preflight from an origin not configured
    ├── PayloadTooLarge (413 payload_too_large)   body bytes or instance count over the limit
    ├── UnsupportedMediaType (415 unsupported_media_type)
    ├── InvalidInput (422 invalid_input)          carries one Problem per row and field at fault
    └── ModelUnavailable (503 model_unavailable)  carries Retry-After
        ├── ModelNotFound                         nothing published at the location
        ├── ArtifactRejected                      sha256 mismatch or foreign scikit-learn version
        └── StorageUnavailable                    storage failed or did not answer in time
    PublishConflict (409 conflict)                another publisher moved current.json first

One handler at the HTTP edge maps every one of them to a JSON body; nothing else turns an
exception into a response.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One field of one row at fault: `row` is the 0-based data row, `field` the column."""

    row: int | None
    field: str | None
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "reason": self.reason}


def one_line(message: str, problems: tuple[Problem, ...], limit: int = 10) -> str:
    """The message and its problems in one line, for protocols whose errors are one string."""
    details = "; ".join(
        f"row {p.row}, {p.field}: {p.reason}"
        if p.row is not None and p.field
        else f"{p.field}: {p.reason}"
        if p.field
        else f"row {p.row}: {p.reason}"
        for p in problems[:limit]
    )
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return f"{message}: {details}{more}" if details else message


class MarketcastError(Exception):
    """An unexpected failure (500). The message is safe to show; details stay in the logs."""

    status = 500
    code = "internal"

    def __init__(self, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems


class BadRequest(MarketcastError):
    """The body cannot be read as the declared format (400)."""

    status = 400
    code = "bad_request"


class NotFound(MarketcastError):
    """No such path on this function (404)."""

    status = 404
    code = "not_found"


class OriginNotAllowed(MarketcastError):
    """A CORS preflight from an origin that is not configured (403)."""

    status = 403
    code = "origin_not_allowed"


class MethodNotAllowed(MarketcastError):
    """The path exists but not for this method (405); `allow` feeds the Allow header."""

    status = 405
    code = "method_not_allowed"

    def __init__(self, message: str, allow: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allow = allow


class PayloadTooLarge(MarketcastError):
    """The body is over the byte limit or holds more instances than allowed (413)."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(MarketcastError):
    """The Content-Type is neither JSON nor CSV (415)."""

    status = 415
    code = "unsupported_media_type"


class InvalidInput(MarketcastError):
    """Rows or options that break the model's schema (422); every fault is listed."""

    status = 422
    code = "invalid_input"


class ModelUnavailable(MarketcastError):
    """The model cannot be served right now (503); clients retry after `retry_after` s."""

    status = 503
    code = "model_unavailable"
    retry_after = 5


class ModelNotFound(ModelUnavailable):
    """Nothing is published for the model at the configured store (503)."""


class ArtifactRejected(ModelUnavailable):
    """The artifact failed its sha256 or scikit-learn version check; never unpickled (503)."""


class StorageUnavailable(ModelUnavailable):
    """Storage failed or did not answer in time (503): the model store or a data bucket.

    Nothing is wrong with the request or the event; it can be retried as a whole.
    """


class PublishConflict(MarketcastError):
    """Another publisher moved current.json first (409); re-read it and decide again."""

    status = 409
    code = "conflict"
