"""Cloud Storage: the client, the bounds every call keeps, and what its failures mean here.

Imported only when a gs:// model store or an ObjectStore is first used, so local serving never
pays for the client library. Every call has a total deadline, so an unreachable store fails in
seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.once import once
from shared.store._deadline import Deadline
from shared.store._errors import ObjectMissing, PreconditionFailed, unavailable

UNAVAILABLE = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
    OSError,
)
# Failures that mean the time ran out: the retries' deadline, or an attempt's own timeout.
LATE = (
    api_exceptions.RetryError,
    api_exceptions.DeadlineExceeded,
    requests.exceptions.Timeout,
    TimeoutError,
)
CONNECT_SECONDS = 3.0

T = TypeVar("T")
Timeout = tuple[float, float]  # (connect, read) seconds of one attempt


class Cloud:
    """A client made on first use, with the timeout and retry policy of every call to it.

    `subject` names the storage in what callers are told ("the model store").
    """

    def __init__(self, timeout_seconds: float, emulator_host: str | None, subject: str) -> None:
        self.subject = subject
        # A call the library retries by itself (a stream's ranges, a rewrite) gets these.
        self.timeout = (min(timeout_seconds, CONNECT_SECONDS), timeout_seconds)
        self.retry: Retry = DEFAULT_RETRY.with_timeout(timeout_seconds).with_delay(
            initial=0.1, maximum=1.0
        )
        self._client = once(lambda: client(emulator_host))

    def bucket(self, name: str) -> storage.Bucket:
        return self._client().bucket(name)

    def within(
        self,
        deadline: Deadline,
        what: str,
        attempt: Callable[[Timeout], T],
        *,
        missing: bool = True,
        retry: bool = True,
    ) -> T:
        """`attempt(timeout)`, retried (where `retry` says it is safe) until `deadline`.

        Each attempt's timeouts are what is left when it starts, and no attempt starts once
        the deadline has passed: StorageUnavailable at once. Failures as in `translated`.
        """

        def bounded() -> T:
            left = deadline.left()
            if left <= 0:
                raise unavailable(self.subject, f"{what}: out of time", late=True)
            return attempt((min(left, CONNECT_SECONDS), left))

        try:
            if not retry:
                return bounded()
            return self.retry.with_timeout(max(deadline.left(), 0.0))(bounded)()
        except UNAVAILABLE as exc:
            raise self.translated(exc, what, missing=missing) from exc

    def call(self, what: str, action: Callable[[], T], *, missing: bool = True) -> T:
        """`action()`, which keeps its own bounds, its failures raised as in `translated`."""
        try:
            return action()
        except UNAVAILABLE as exc:
            raise self.translated(exc, what, missing=missing) from exc

    def translated(self, exc: BaseException, what: str, *, missing: bool = True) -> BaseException:
        """The store's error for a failed call that tried to `what`, or `exc` if it is none.

        `missing`: whether a 404 answers the call (no such object, or not that generation)
        rather than failing it (the bucket, or the upload being written, is gone).
        """
        if isinstance(exc, api_exceptions.PreconditionFailed):
            return PreconditionFailed(what)
        if missing and isinstance(exc, api_exceptions.NotFound):
            return ObjectMissing(what)
        if isinstance(exc, UNAVAILABLE):
            where = f"{what}: {type(exc).__name__}"
            return unavailable(self.subject, where, late=isinstance(exc, LATE))
        return exc


def client(emulator_host: str | None) -> storage.Client:
    """A Cloud Storage client; anonymous against an emulator."""
    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project="local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": emulator_host},
        )
    return storage.Client()
