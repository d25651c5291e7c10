"""The schema's rules for one value: what is missing, a number, in range, a category; and what
a fault says beyond its reason: the value received, shortened, and the field a name unknown to
the model was probably meant to be.

Every validator of the package applies these rules, and names faults with these reasons.
Plain Python: the row-by-row validator runs without numpy or pandas.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from shared.schema import NUMBER_PATTERN, CategoricalFeature, NumericFeature


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""Marks a key that a JSON instance did not have (unlike an explicit null)."""

MISSING = "missing"
NOT_A_NUMBER = "must be a number"
NOT_A_PLAIN_NUMBER = (
    "must be a plain number such as 1234.5: currency signs and thousands separators are not read"
)
NOT_FINITE = "must be a finite number"
UNKNOWN_FIELD = "unknown field"
MISSING_COLUMN = "missing column"

_SPACE = r"[ \t\r\n\f\v]*"
NUMBER = re.compile(NUMBER_PATTERN.strip("^$"))
NOT_FINITE_WORD = re.compile(_SPACE + r"[-+]?(nan|inf|infinity)" + _SPACE, re.IGNORECASE)
# A number as a spreadsheet or an invoice writes it: "$52,000", "52.000,50", "52000 EUR".
# Possessive: a long cell that fails ends the match; nothing is tried another way.
_CURRENCY = r"(?:[$\u00a2-\u00a5\u20a0-\u20bf]|[A-Za-z]{3})"
FORMATTED_NUMBER = re.compile(
    rf"\s*+[-+]?\s*+(?:{_CURRENCY}\s*+)?[-+]?[0-9][0-9,.'_\s\u00a0\u202f]*+{_CURRENCY}?\s*+"
)

SHOWN_CHARACTERS = 16  # a value longer than this is shown cut short, never whole
_SHOWN_PREFIX = 10
_SUGGESTION_CUTOFF = 0.8  # difflib's ratio: "incme" is 0.91 of "income", "inc" only 0.67
_LONGEST_MISSPELLING = 64  # a longer name is no misspelling of a field
_NAMES_SEARCHED = 1000  # a header wider than this is no spreadsheet with a typo


def is_missing(value: object) -> bool:
    if value is ABSENT or value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")  # pandas' missing markers


def number(value: object) -> tuple[float, str]:
    """(value, "") for a finite number or numeric string, else (nan, reason)."""
    if type(value) is float or type(value) is int:  # the common case, first
        try:
            parsed = float(value)
        except OverflowError:  # an int too large for a float
            return math.nan, NOT_FINITE
        if math.isfinite(parsed):
            return parsed, ""
        return math.nan, MISSING if math.isnan(parsed) else NOT_FINITE
    if isinstance(value, bool) or _is_numpy_bool(value):
        return math.nan, NOT_A_NUMBER
    if isinstance(value, str):
        if NUMBER.fullmatch(value):
            parsed = float(value)
            return (parsed, "") if math.isfinite(parsed) else (math.nan, NOT_FINITE)
        if is_missing(value):
            return math.nan, MISSING
        if NOT_FINITE_WORD.fullmatch(value):
            return math.nan, NOT_FINITE
        return math.nan, NOT_A_PLAIN_NUMBER if FORMATTED_NUMBER.fullmatch(value) else NOT_A_NUMBER
    if is_missing(value):
        return math.nan, MISSING
    try:
        parsed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan, NOT_A_NUMBER
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        return (parsed, "") if math.isfinite(parsed) else (math.nan, NOT_FINITE)
    return math.nan, NOT_A_NUMBER


def _is_numpy_bool(value: object) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")


def in_range(feature: NumericFeature, value: float) -> str:
    if feature.minimum <= value <= feature.maximum:
        return ""
    return f"must be between {feature.minimum:g} and {feature.maximum:g}"


def category(
    feature: CategoricalFeature, lookup: Mapping[str, str], value: object
) -> tuple[str | None, str]:
    """(canonical category, "") or (None, reason)."""
    if isinstance(value, str):
        found = lookup.get(value.strip().casefold())
        if found is not None:
            return found, ""
    if is_missing(value):
        return None, MISSING
    return None, f"must be one of {', '.join(feature.categories)}"


def received(raw: object, value: object) -> str | int | float | None:
    """What a fault shows of the value received: the number it was read as, when it was read
    as one (out of range: 300, whether sent as 300, 300.0 or "300"); else the value as sent,
    shortened; None for a missing value, or one with nothing short to show (an object)."""
    if isinstance(value, float) and math.isfinite(value):
        return _number(value)
    if is_missing(raw):
        return None
    return shown(raw)


def shown(value: object) -> str | int | float | None:
    """A value as a fault may show it: a text of at most SHOWN_CHARACTERS, else its start; a
    number, or a boolean, as it is; None for anything else."""
    if hasattr(value, "dtype") and hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    if isinstance(value, str):
        return value if len(value) <= SHOWN_CHARACTERS else value[:_SHOWN_PREFIX] + "..."
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**SHOWN_CHARACTERS else None
    if isinstance(value, float):
        return _number(value) if math.isfinite(value) else repr(value)
    return None


def _number(value: float) -> int | float:
    """A whole number as an int (300, not 300.0), so that it reads the same however sent."""
    whole = value.is_integer() and abs(value) < 10**SHOWN_CHARACTERS
    return int(value) if whole else float(value)  # a plain float, never numpy's


def meant(name: str, known: Sequence[str]) -> str | None:
    """The known name `name` was probably meant to be: the one that differs only in case,
    spaces, "-" and "_" ("Age", "INCOME "); else the one close spelling ("incme"); else None,
    when none is close or two are."""
    folded = _folded(name)
    same = [candidate for candidate in known if _folded(candidate) == folded]
    if same or len(name) > _LONGEST_MISSPELLING:
        return same[0] if len(same) == 1 else None
    by_folded = {_folded(candidate): candidate for candidate in known}
    close = difflib.get_close_matches(folded, list(by_folded), n=2, cutoff=_SUGGESTION_CUTOFF)
    return by_folded[close[0]] if len(close) == 1 else None


def _folded(name: str) -> str:
    return name.casefold().replace(" ", "").replace("-", "").replace("_", "")


def unknown_reason(name: str, known: Sequence[str], reason: str = UNKNOWN_FIELD) -> str:
    """`reason` for a name the model does not know, with the field it was probably meant to be."""
    guess = meant(name, known)
    return reason if guess is None else f"{reason} (did you mean {guess}?)"


def meant_by(unknown: Iterable[str], known: Sequence[str]) -> dict[str, str]:
    """For each known name, the one unknown name sent that was probably meant to be it."""
    found: dict[str, list[str]] = {}
    for name in itertools.islice(unknown, _NAMES_SEARCHED):
        guess = meant(name, known)
        if guess is not None:
            found.setdefault(guess, []).append(name)
    return {guess: names[0] for guess, names in found.items() if len(names) == 1}


def missing_reason(name: str, near: Mapping[str, str]) -> str:
    """MISSING_COLUMN, and the name sent that was probably meant to be the column (`meant_by`):
    where names the model does not know are passed through, nothing else would name it."""
    found = near.get(name)
    if found is None:
        return MISSING_COLUMN
    return f"{MISSING_COLUMN} (is {orjson.dumps(shown(found)).decode()} meant to be {name}?)"
