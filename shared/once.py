"""A value made on first use, once per process, whatever the number of threads asking."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def once(make: Callable[[], T]) -> Callable[[], T]:
    """`make()` on the first call, under a lock (the framework serves requests on several
    threads); the same value on every later call. Nothing is made at import time."""
    lock = threading.Lock()
    made: list[T] = []

    def get() -> T:
        with lock:
            if not made:
                made.append(make())
            return made[0]

    return get
