"""Checking rows against a model's schema: one set of rules, applied three ways.

    _values      the rules for one value, the reasons every validator names, the value a
                 fault shows, and the field an unknown name was probably meant to be
    _records     the rules row by row in plain Python (small requests, unclean JSON batches)
    _reference   the rules column by column with pandas (training data, unclean columns)
    _clean       the clean check: plainly valid rows straight into numpy columns; it never
                 decides an error, a row it cannot pass goes to one of the two above
    _rows        rows as a protocol decoded them, numbered by position

Which of them checks a request is chosen in one place, `shared.predict`. Every validator names
rows by their position in the input and fields by name; tests hold them to the same answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.validation._records import validate_records
from shared.validation._rows import Rows
from shared.validation._values import (
    ABSENT,
    MISSING,
    MISSING_COLUMN,
    NOT_A_NUMBER,
    NOT_A_PLAIN_NUMBER,
    NOT_FINITE,
    UNKNOWN_FIELD,
    meant,
    meant_by,
    missing_reason,
    unknown_reason,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import numpy as np
    import pandas as pd

    from shared.schema import ModelSchema
    from shared.validation._reference import Validated

__all__ = [
    "ABSENT",
    "MISSING",
    "MISSING_COLUMN",
    "NOT_A_NUMBER",
    "NOT_A_PLAIN_NUMBER",
    "NOT_FINITE",
    "UNKNOWN_FIELD",
    "Rows",
    "clean_columns",
    "clean_records",
    "meant",
    "meant_by",
    "missing_reason",
    "unknown_reason",
    "validate",
    "validate_records",
]


# The validators that need numpy or pandas are imported on first use: small requests never do.


def validate(frame: pd.DataFrame, schema: ModelSchema, *, allow_extra: bool = False) -> Validated:
    """The frame validator (`_reference.validate`)."""
    from shared.validation._reference import validate as by_frame

    return by_frame(frame, schema, allow_extra=allow_extra)


def clean_records(
    objects: Sequence[Mapping[str, Any]], schema: ModelSchema
) -> dict[str, Any] | None:
    """Canonical columns of JSON objects, or None unless every row is clean (`_clean`)."""
    from shared.validation._clean import clean_records as by_record

    return by_record(objects, schema)


def clean_columns(
    raw: Mapping[str, Sequence[Any]], count: int, schema: ModelSchema
) -> tuple[dict[str, Any], np.ndarray]:
    """Canonical columns and which rows are clean (`_clean`)."""
    from shared.validation._clean import clean_columns as by_column

    return by_column(raw, count, schema)
