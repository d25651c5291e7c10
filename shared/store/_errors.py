"""The two answers storage gives that are not failures, and the one error for a failure."""

from __future__ import annotations

from shared.errors import StorageUnavailable


class ObjectMissing(Exception):
    """No object at that key, or not at that generation any more.

    Loading a model turns it into ModelNotFound (503).
    """


class PreconditionFailed(Exception):
    """A generation precondition failed: a create-if-absent found an object at the key, or
    another writer moved it first. Publishing turns it into PublishConflict (409)."""


def unavailable(subject: str, where: str, *, late: bool = False) -> StorageUnavailable:
    """Storage failed (or, `late`, did not answer in time). The caller is told that much of
    `subject` ("the model store"); `where` (the call, key and location) is for the log only."""
    reason = "did not answer in time" if late else "is not available"
    return StorageUnavailable(f"{subject} {reason}", where=where)
