"""Cloud Storage as a model store backend: bounded reads and writes with preconditions.

Imported only when MODEL_STORE is a gs:// location, so local serving never pays for the
client library. Every call has a total deadline, so an unreachable store fails in seconds.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.errors import StorageUnavailable
from shared.model_store import ObjectMissing, PreconditionFailed

_UNAVAILABLE = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
    OSError,
)


class GcsBucket:
    def __init__(
        self, bucket: str, prefix: str, timeout_seconds: float, emulator_host: str | None
    ) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"gs://{bucket}/{self.prefix}"
        self.timeout = timeout_seconds
        self.emulator_host = emulator_host
        self._bucket: Any = None
        self._lock = threading.Lock()

    def read(self, key: str) -> bytes:
        try:
            data: bytes = self._blob(key).download_as_bytes(
                timeout=self._request_timeout(), retry=self._retry()
            )
            return data
        except api_exceptions.NotFound as exc:
            raise ObjectMissing(key) from exc
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"cannot read {key} from {self.location}") from exc

    def generation(self, key: str) -> int:
        try:
            blob = self._bucket_handle().get_blob(
                self.prefix + key, timeout=self._request_timeout(), retry=self._retry()
            )
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"cannot stat {key} in {self.location}") from exc
        return int(blob.generation) if blob is not None else 0

    def write(self, key: str, data: bytes, *, if_generation_match: int | None) -> None:
        try:
            self._blob(key).upload_from_string(
                data,
                content_type=_content_type(key),
                if_generation_match=if_generation_match,
                timeout=self._request_timeout(),
                retry=self._retry() if if_generation_match is not None else None,
            )
        except api_exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(key) from exc
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"cannot write {key} to {self.location}") from exc

    def _blob(self, key: str) -> Any:
        return self._bucket_handle().blob(self.prefix + key)

    def _bucket_handle(self) -> Any:
        with self._lock:
            if self._bucket is None:
                self._bucket = client(self.emulator_host).bucket(self.bucket_name)
            return self._bucket

    def _request_timeout(self) -> tuple[float, float]:
        return (min(self.timeout, 3.0), self.timeout)

    def _retry(self) -> Retry:
        retry: Retry = DEFAULT_RETRY.with_timeout(self.timeout).with_delay(initial=0.1, maximum=1.0)
        return retry


def client(emulator_host: str | None) -> storage.Client:
    """A Cloud Storage client; anonymous against an emulator, made only when first needed."""
    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project="local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": emulator_host},
        )
    return storage.Client()


def _content_type(key: str) -> str:
    return "application/json" if key.endswith(".json") else "application/octet-stream"
