"""Columns of text cells read as numbers in one pass, when every cell is a number as written.

Both the clean check and the frame validator read text columns this way; a column that is not
all numbers returns None, and its cells are then read one by one by the per-value rule.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import orjson

from shared.validation._values import NUMBER

# Possessive: a cell that fails ends the match; earlier cells are never tried another way.
_NUMERIC_CELLS = re.compile(f"(?:{NUMBER.pattern}\x00)*+")
_JSON_NUMBER_CHARACTERS = b"0123456789.eE+- \t\r\n,"


def numeric_cells(raw: Sequence[str] | np.ndarray) -> np.ndarray | None:
    """Every cell parsed, if every cell is a number as written; else None (cell by cell)."""
    values = _json_numbers(raw)
    if values is not None:
        return values
    if not _NUMERIC_CELLS.fullmatch("\x00".join(raw) + "\x00"):
        return None
    try:
        return np.fromiter(map(float, raw), float, len(raw))
    except ValueError:  # a cell holding the separator itself
        return None


def _json_numbers(raw: Sequence[str] | np.ndarray) -> np.ndarray | None:
    """The cells read as one JSON array, when that is what they are: the common column of
    plain numbers, parsed many times faster than by float() cell by cell. A JSON number (with
    JSON's blanks around it) is a number as the schema writes it, and reads as the same float;
    cells holding nothing but number characters make an array of nothing but numbers."""
    text = ",".join(raw)
    try:
        if text.encode("ascii").translate(None, _JSON_NUMBER_CHARACTERS):
            return None
        parsed = orjson.loads(f"[{text}]")
    except (UnicodeEncodeError, orjson.JSONDecodeError):
        return None
    if len(parsed) != len(raw):  # a cell held a comma
        return None
    if "-0" in text:  # JSON reads "-0" as the integer 0; float() keeps the sign
        return np.fromiter(map(float, raw), float, len(raw))
    return np.array(parsed, dtype=float)
