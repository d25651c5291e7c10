"""Models in memory: each loaded once per process, then kept up to date with current.json.

`ModelStore.get` loads each model once per process, however many threads ask at once, then
checks current.json every refresh interval and swaps in a new version while the old one keeps
serving. A load, or a refresh check with the load it leads to, keeps one storage budget.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from shared.errors import ModelUnavailable
from shared.logs import log
from shared.store._backends import Backend
from shared.store._deadline import Deadline
from shared.store._loading import LoadedModel, load_current, read_pointer

FAILURE_BACKOFF_SECONDS = 1.0


@dataclass
class _Slot:
    lock: threading.Lock
    refreshing: threading.Lock
    model: LoadedModel | None = None
    next_check: float = 0.0
    failure: ModelUnavailable | None = None
    failure_until: float = 0.0


class ModelStore:
    """Models loaded once per process and refreshed from current.json without a restart."""

    def __init__(
        self,
        backend: Backend,
        refresh_seconds: float,
        *,
        loader: Callable[[Backend, str, Deadline], LoadedModel] = load_current,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.refresh_seconds = refresh_seconds
        self._loader = loader
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()

    def get(self, name: str) -> LoadedModel:
        slot = self._slot(name)
        model = slot.model
        if model is None:
            return self._first_load(name, slot)
        if self._clock() >= slot.next_check and slot.refreshing.acquire(blocking=False):
            try:
                self._refresh(name, slot, model)
            finally:
                slot.refreshing.release()
        return slot.model or model

    def ready(self, name: str) -> bool:
        """Whether `get` would answer from memory at once: loaded, and no check is due."""
        slot = self._slots.get(name)
        return slot is not None and slot.model is not None and self._clock() < slot.next_check

    def loaded(self, name: str) -> LoadedModel | None:
        """The model if it is already in memory; never touches storage."""
        slot = self._slots.get(name)
        return slot.model if slot else None

    def _slot(self, name: str) -> _Slot:
        with self._slots_lock:
            return self._slots.setdefault(name, _Slot(threading.Lock(), threading.Lock()))

    def _first_load(self, name: str, slot: _Slot) -> LoadedModel:
        with slot.lock:
            if slot.model is not None:
                return slot.model
            if slot.failure is not None and self._clock() < slot.failure_until:
                raise slot.failure
            try:
                slot.model = self._load(name, self.backend.deadline())
            except ModelUnavailable as exc:
                slot.failure, slot.failure_until = exc, self._clock() + FAILURE_BACKOFF_SECONDS
                raise
            slot.failure = None
            slot.next_check = self._clock() + self.refresh_seconds
            return slot.model

    def _refresh(self, name: str, slot: _Slot, model: LoadedModel) -> None:
        slot.next_check = self._clock() + self.refresh_seconds
        deadline = self.backend.deadline()
        try:
            pointer = read_pointer(self.backend, name, deadline)
            if (pointer["version"], pointer["sha256"]) == (model.version, model.sha256):
                return
            slot.model = self._load(name, deadline)
        except ModelUnavailable as exc:
            log(
                "WARNING",
                "model refresh failed; serving the loaded version",
                model=name,
                version=model.version,
                error=exc.message,
                where=exc.where,
                store=self.backend.location,
            )

    def _load(self, name: str, deadline: Deadline) -> LoadedModel:
        started = time.perf_counter()
        try:
            model = self._loader(self.backend, name, deadline)
        except ModelUnavailable as exc:
            log(
                "ERROR",
                "model load failed",
                model=name,
                error=exc.message,
                where=exc.where,  # the log says where; callers are not told
                store=self.backend.location,
            )
            raise
        log(
            "INFO",
            "model loaded",
            model=name,
            version=model.version,
            sha256=model.sha256,
            seconds=round(time.perf_counter() - started, 3),
            store=self.backend.location,
        )
        return model
