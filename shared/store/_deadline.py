"""The one budget a piece of storage work keeps, however many calls it makes."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """When a piece of storage work must be over, on the monotonic clock.

    A model load (or a refresh check) sets one before anything else, so importing the client
    library and making the client count too, and passes it to each of its reads: each gets what
    is left, and none starts once it has passed.
    """

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        """Seconds left; 0 or less once the deadline has passed."""
        return self.at - time.monotonic()
