"""The two answers storage gives that are not failures; failures are StorageUnavailable."""

from __future__ import annotations


class ObjectMissing(Exception):
    """No object at that key, or not at that generation any more.

    Loading a model turns it into ModelNotFound (503).
    """


class PreconditionFailed(Exception):
    """A generation precondition failed: a create-if-absent found an object at the key, or
    another writer moved it first. Publishing turns it into PublishConflict (409)."""
