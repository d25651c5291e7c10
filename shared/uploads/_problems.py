"""The one error for a file that cannot be used as a whole, and its codes in report.json.

Scoring and retraining both raise it; neither retries it. It is not an HTTP error: it carries
no status and never becomes a response.
"""

from __future__ import annotations

# Codes of whole-file problems, as they appear in report.json. A CSV the layout refuses keeps
# the code (and message) `shared.codecs` gives it, which a request body gets too.
from shared.codecs import (
    AMBIGUOUS_DELIMITER,
    COLUMN_CLASH,
    EMPTY,
    MISSING_COLUMNS,
    NOT_CSV,
    NOT_UTF8,
    REPEATED_COLUMN,
    WRONG_DELIMITER,
)

UNKNOWN_MODEL = "unknown_model"
INPUT_GONE = "input_gone"
NOT_GZIP = "bad_gzip"
OPTIONS_UNAVAILABLE = "options_unavailable"
OUTPUT_CONFLICT = "output_conflict"

__all__ = [
    "AMBIGUOUS_DELIMITER",
    "COLUMN_CLASH",
    "EMPTY",
    "INPUT_GONE",
    "MISSING_COLUMNS",
    "NOT_CSV",
    "NOT_GZIP",
    "NOT_UTF8",
    "OPTIONS_UNAVAILABLE",
    "OUTPUT_CONFLICT",
    "REPEATED_COLUMN",
    "UNKNOWN_MODEL",
    "WRONG_DELIMITER",
    "FileProblem",
]


class FileProblem(Exception):
    """The file cannot be used as a whole; the report says why and the event is done."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
