"""Which upload a finalized Cloud Storage event names: read from the event, never fetched.

Both event functions take their uploads through here: scoring from `incoming/<model>/`,
retraining from `training/<model>/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.schema import MODELS

FINALIZED = "google.cloud.storage.object.v1.finalized"
SUFFIXES = (".csv", ".csv.gz")
MAX_NAME_BYTES = 1024  # Cloud Storage's limit on object names


@dataclass(frozen=True)
class Ignored:
    """An event that names nothing to work on; `reason` is safe to log."""

    reason: str


@dataclass(frozen=True)
class Upload:
    """One generation of one uploaded object, as a finalized event names it."""

    event_id: str
    event_time: datetime | None
    bucket: str
    name: str
    generation: int
    model: str
    relative_name: str  # the name below incoming/<model>/ (training/<model>/ for retraining)

    @property
    def known_model(self) -> bool:
        return self.model in MODELS

    def log_fields(self) -> dict[str, Any]:
        """Which upload a log line is about: names and numbers, never file contents."""
        return {
            "event_id": self.event_id,
            "bucket": self.bucket,
            "object": self.name,
            "generation": str(self.generation),
            "model": self.model,
        }


U = TypeVar("U", bound=Upload)


def storage_object(
    attributes: Mapping[str, Any], data: object, prefix: str, kind: type[U]
) -> U | Ignored:
    """The file a finalized event names under `<prefix><model>/`, or why it is ignored."""
    if attributes.get("type") != FINALIZED:
        return Ignored(f"event type is not {FINALIZED}")
    if not isinstance(data, Mapping):
        return Ignored("event data is not a Cloud Storage object")
    bucket, name, generation = data.get("bucket"), data.get("name"), data.get("generation")
    if not isinstance(bucket, str) or not bucket or not isinstance(name, str):
        return Ignored("event data names no bucket and object")
    if not str(generation).isdigit():
        return Ignored("event data has no object generation")
    if not name.startswith(prefix):
        return Ignored(f"object is outside {prefix}")
    model, _, relative = name.removeprefix(prefix).partition("/")
    if not model or not relative or relative.endswith("/"):
        return Ignored(f"object is not a file in a {prefix}<model>/ folder")
    if not relative.lower().endswith(SUFFIXES):
        return Ignored("object is not a .csv or .csv.gz file")
    return kind(
        event_id=str(attributes.get("id", "")),
        event_time=parse_time(attributes.get("time")),
        bucket=bucket,
        name=name,
        generation=int(str(generation)),
        model=model,
        relative_name=relative,
    )


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (a CloudEvent's `time`), or None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_too_old(event_time: datetime | None, now: datetime, max_age_seconds: float) -> bool:
    """An event without a readable time is never too old: it is worked on."""
    return event_time is not None and (now - event_time).total_seconds() > max_age_seconds
