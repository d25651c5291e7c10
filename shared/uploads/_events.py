"""Which upload a finalized Cloud Storage event names: read from the event, never fetched.

Both event functions take their uploads through here: scoring from `incoming/<model>/`,
retraining from `training/<model>/`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from shared.schema import MODELS

FINALIZED = "google.cloud.storage.object.v1.finalized"
SUFFIXES = (".csv", ".csv.gz")
MAX_NAME_BYTES = 1024  # Cloud Storage's limit on object names
MAX_ID_CHARS = 256  # Eventarc's ids are Pub/Sub message ids, about 16 digits
MAX_GENERATION = 2**63 - 1  # Cloud Storage generations are int64
# ASCII digits without a leading zero: str.isdigit() also takes "²", which int() refuses.
_GENERATION = re.compile(r"[1-9][0-9]{0,18}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9_.-]{1,220}[a-z0-9]")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")


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
    """The file a finalized event names under `<prefix><model>/`, or why it is ignored.

    Total: any attribute or data field of any JSON type (or missing) gives an answer, and the
    reason names only fields, never what they held.
    """
    if attributes.get("type") != FINALIZED:
        return Ignored(f"event type is not {FINALIZED}")
    event_id = readable_id(attributes.get("id"))
    if event_id is None:
        return Ignored(f"event id is not a string of 1 to {MAX_ID_CHARS} printable characters")
    if not isinstance(data, Mapping):
        return Ignored("event data is not a Cloud Storage object")
    bucket, name = bucket_name(data.get("bucket")), object_name(data.get("name"))
    generation = object_generation(data.get("generation"))
    if bucket is None:
        return Ignored("event data has no valid bucket name")
    if name is None:
        return Ignored("event data has no valid object name")
    if generation is None:
        return Ignored("event data has no valid object generation")
    if not name.startswith(prefix):
        return Ignored(f"object is outside {prefix}")
    model, _, relative = name.removeprefix(prefix).partition("/")
    if not model or not relative or relative.endswith("/"):
        return Ignored(f"object is not a file in a {prefix}<model>/ folder")
    if not relative.lower().endswith(SUFFIXES):
        return Ignored("object is not a .csv or .csv.gz file")
    return kind(
        event_id=event_id,
        event_time=parse_time(attributes.get("time")),
        bucket=bucket,
        name=name,
        generation=generation,
        model=model,
        relative_name=relative,
    )


def readable_id(value: object) -> str | None:
    """The event's id when it is fit for logs and reports: a short printable string."""
    if isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS and value.isprintable():
        return value
    return None


def bucket_name(value: object) -> str | None:
    """A name by Cloud Storage's bucket rules: lowercase letters, digits, `-`, `_` and `.`;
    3 to 63 characters, or up to 222 in dot-separated parts of at most 63; not an IPv4 address."""
    if not isinstance(value, str) or not _BUCKET.fullmatch(value):
        return None
    if "." not in value:
        return value if len(value) <= 63 else None
    parts_fit = all(0 < len(part) <= 63 for part in value.split("."))
    return value if parts_fit and not _IPV4.fullmatch(value) else None


def object_name(value: object) -> str | None:
    """1 to MAX_NAME_BYTES bytes of UTF-8 (so no lone surrogates), without CR, LF or NUL."""
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\0"):
        return None
    try:
        encoded = value.encode()
    except UnicodeEncodeError:
        return None
    return value if len(encoded) <= MAX_NAME_BYTES else None


def object_generation(value: object) -> int | None:
    """A generation as Cloud Storage gives it (an int64 > 0, as a decimal string or a JSON
    number), or None for anything else: a bool, a float, other digits, more than 19 of them."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _GENERATION.fullmatch(value):
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= MAX_GENERATION else None


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
