"""How many threads scikit-learn's compiled kernels (OpenMP) may use.

One per prediction by default: requests already run on parallel threads, and nested thread
pools on a small instance are many times slower for small inputs. A large batch is the
exception: one request then has the instance to itself for a while, and the boosted trees'
predictor scales with cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

LARGE_BATCH_ROWS = 20_000


def single_threaded() -> None:
    """Process-wide, once scikit-learn is loaded."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="openmp")


@contextlib.contextmanager
def cores_for(rows: int) -> Iterator[None]:
    """Every core for a large batch, for the duration of one prediction."""
    if rows < LARGE_BATCH_ROWS or (os.cpu_count() or 1) == 1:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(os.cpu_count(), user_api="openmp"):
        yield
