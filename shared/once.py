"""A value made on first use, once per process (or once per key, such as a loaded model
version), whatever the number of threads asking."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K")


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


def once_per(make: Callable[[K], T]) -> Callable[[K], T]:
    """`make(key)` on the first call for each key, under a lock; the same value for that key
    afterwards. Keys are held weakly: a model version no longer served takes its values along."""
    lock = threading.Lock()
    made: weakref.WeakKeyDictionary[K, T] = weakref.WeakKeyDictionary()

    def get(key: K) -> T:
        with lock:
            if key not in made:
                made[key] = make(key)
            return made[key]

    return get
