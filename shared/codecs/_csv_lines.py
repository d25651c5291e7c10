"""Plain CSV rows as bytes: the one check both the row reader and the grid make first."""

from __future__ import annotations


def lf_bytes(raw: bytes) -> bytes | None:
    """Rows with LF line ends and a final LF, when they hold no quote or NUL and every CR is part
    of a CRLF (what str methods read as the csv module would); else None."""
    if b'"' in raw or b"\x00" in raw:
        return None
    if b"\r" in raw:
        if raw.count(b"\r") != raw.count(b"\r\n"):
            return None
        raw = raw.replace(b"\r\n", b"\n")
    return raw if raw.endswith(b"\n") else raw + b"\n"
