"""The one error for a file that cannot be used as a whole, and its codes in report.json.

Scoring and retraining both raise it; neither retries it. It is not an HTTP error: it carries
no status and never becomes a response.
"""

from __future__ import annotations

# Codes of whole-file problems, as they appear in report.json.
UNKNOWN_MODEL = "unknown_model"
INPUT_GONE = "input_gone"
EMPTY = "empty"
NOT_UTF8 = "not_utf8"
NOT_GZIP = "bad_gzip"
NOT_CSV = "bad_csv"
WRONG_DELIMITER = "wrong_delimiter"
MISSING_COLUMNS = "missing_columns"
REPEATED_COLUMN = "repeated_column"
COLUMN_CLASH = "column_clash"
OPTIONS_UNAVAILABLE = "options_unavailable"
OUTPUT_CONFLICT = "output_conflict"


class FileProblem(Exception):
    """The file cannot be used as a whole; the report says why and the event is done."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
