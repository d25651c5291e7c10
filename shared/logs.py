"""Structured log lines: one JSON object per line on stdout, in the shape Cloud Logging reads.

Callers pass counts, versions, timings and codes; never raw feature values.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from typing import Any

import orjson

_write_lock = threading.Lock()
_HEX = re.compile(r"[0-9a-fA-F]{1,64}")
_DIGITS = re.compile(r"[0-9]{1,20}")


def log(severity: str, message: str, **fields: Any) -> None:
    entry = {"severity": severity, "message": message, "time": _now(), **fields}
    line = orjson.dumps(entry, default=str).decode() + "\n"
    with _write_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def trace_fields(header: str | None, project: str | None) -> dict[str, Any]:
    """Cloud Logging's trace fields from an `X-Cloud-Trace-Context: TRACE/SPAN;o=1` header."""
    if not header or not project:
        return {}
    trace, _, rest = header.partition("/")
    span = rest.split(";", 1)[0]
    if not _HEX.fullmatch(trace):
        return {}
    fields: dict[str, Any] = {"logging.googleapis.com/trace": f"projects/{project}/traces/{trace}"}
    if _DIGITS.fullmatch(span):
        fields["logging.googleapis.com/spanId"] = span
    fields["logging.googleapis.com/trace_sampled"] = rest.endswith("o=1")
    return fields


def _now() -> str:
    seconds = time.time()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1e6):06d}Z"
    )
