"""How a CSV is laid out, decided once from its first line, for request bodies and uploaded files
alike; and what a CSV that cannot be read as the model's table is told, in the same words on
both paths (`CsvRefused`: the HTTP codec turns it into a 400 or 422, uploads into report.json).

    separator      a comma, semicolon or tab: the one the header line holds outside quotes. A
                   header holding more than one is settled by the next SAMPLE_LINES lines: the
                   separator each of them holds as often as the header does. When they do not
                   settle it, the CSV is refused rather than guessed at. A header holding none
                   (one column) is comma-separated.
    decimal comma  a semicolon-separated CSV is what Excel saves where the comma is the decimal
                   mark, so there a cell of a numeric feature written `52000,50` (digits around
                   one comma, no point) is read as 52000.50, and the numbers the answer appends
                   are written with a comma too. A comma- or tab-separated CSV never reads a
                   comma in a number: in a tab-separated paste `52,000` may well be fifty-two
                   thousand. Thousands separators are read nowhere (`52.000,50` is not a number).
    header names   matched to the model's features ignoring case, spaces around a name, and the
                   difference between a space and an underscore; other columns are kept as sent.
    lines          the row number a spreadsheet shows a record on: each record, a blank one too,
                   is one line more, and a line break inside a quoted cell does not start a new
                   one; the header's line is 1 unless blank lines come before it. Data rows are
                   the records after the header that are not blank, numbered from 0.

A UTF-8 byte order mark is dropped, and CRLF, LF and CR line ends read alike (`_csv_reader`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from shared.errors import Problem
from shared.validation import meant_by, missing_reason

SEPARATORS = {",": "commas", ";": "semicolons", "\t": "tabs"}
_UNREAD_SEPARATORS = {"|": "pipes"}
SAMPLE_LINES = 20

# What a refused CSV is, as report.json names it (and the HTTP codec maps to a status).
EMPTY = "empty"
NOT_UTF8 = "not_utf8"
NOT_CSV = "bad_csv"
AMBIGUOUS_DELIMITER = "ambiguous_delimiter"
WRONG_DELIMITER = "wrong_delimiter"
MISSING_COLUMNS = "missing_columns"
REPEATED_COLUMN = "repeated_column"
COLUMN_CLASH = "column_clash"

_SPACE = r"[ \t\r\n\f\v]*"  # what the number rule allows around a number
_DECIMAL_COMMA = re.compile(
    _SPACE + r"[-+]?(?:[0-9]+,[0-9]*|,[0-9]+)(?:[eE][-+]?[0-9]+)?" + _SPACE
)  # unambiguous, like the number rule: a failing match never backtracks far
# Cells joined by NUL (which no cell holds), each without a comma or a decimal-comma number:
# then every comma in them is a decimal mark. Possessive, like the number rule's column check;
# the first, narrower one (digits, one comma, empty cells) reads the common column faster.
_PLAIN_DECIMAL_COMMA_CELLS = re.compile(r"(?:[0-9]++(?:,[0-9]*+)?+\x00|,[0-9]++\x00|\x00)*+")
_DECIMAL_COMMA_CELLS = re.compile(f"(?:[^,\x00]*+\x00|{_DECIMAL_COMMA.pattern}\x00)*+")
_QUOTE_REASONS = ("expected after", "unexpected end of data")


class CsvRefused(ValueError):
    """A CSV that cannot be read as a table of the model's columns: `code` names the fault,
    `message` says what was seen and what would work, `problems` the columns at fault.

    Not an HTTP error itself: a request body's becomes a 422 for missing columns and a 400 for
    any other fault (`_csv.refusal`), an upload's a FileProblem with the same code and message.
    """

    def __init__(self, code: str, message: str, problems: tuple[Problem, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.problems = problems


class NotUtf8(CsvRefused):
    """The bytes are not UTF-8 near `line` (400 for a request body)."""

    def __init__(self, line: int) -> None:
        super().__init__(
            NOT_UTF8,
            f"the CSV is not UTF-8 text (invalid bytes near line {line}); save it as CSV UTF-8",
        )
        self.line = line


class NotCsv(CsvRefused):
    """The csv module stopped reading at `line` (the record it was reading) for `reason` (400
    for a request body)."""

    def __init__(self, line: int, reason: str) -> None:
        hint = ""
        if any(words in reason for words in _QUOTE_REASONS):
            hint = (
                "; a cell that starts with a quote must end with one, right before the next "
                'separator or the line end, and a quote inside it is written twice ("")'
            )
        super().__init__(NOT_CSV, f"the CSV cannot be read at line {line}: {reason}{hint}")
        self.line = line
        self.reason = reason


def no_header() -> CsvRefused:
    return CsvRefused(EMPTY, "the CSV is empty; expected a header row naming the columns")


@dataclass(frozen=True)
class Dialect:
    """How one CSV writes its cells: the separator, and with it the decimal mark."""

    separator: str = ","

    @property
    def decimal_comma(self) -> bool:
        return self.separator == ";"

    def numbers_read(self, cells: Sequence[Any]) -> Sequence[Any]:
        """A numeric feature's cells with a decimal comma written with a point, so that the
        validator reads them; every other cell as sent, for the validator to judge (and a
        column already read as numbers, a grid's, as it is)."""
        if not self.decimal_comma or not isinstance(cells, list):
            return cells
        joined = "\x00".join(cells)
        if "," not in joined:
            return cells
        every = joined + "\x00"
        if _PLAIN_DECIMAL_COMMA_CELLS.fullmatch(every) or _DECIMAL_COMMA_CELLS.fullmatch(every):
            return joined.replace(",", ".").split("\x00")  # the common column, at C speed
        return [_with_point(cell) if "," in cell else cell for cell in cells]

    def numbers_written(self, texts: list[str]) -> list[str]:
        """Numbers' texts (a point, never a comma) with this CSV's decimal mark."""
        if not self.decimal_comma:
            return texts
        return "\n".join(texts).replace(".", ",").split("\n") if texts else texts


COMMAS = Dialect()


def _with_point(cell: str) -> str:
    return cell.replace(",", ".") if _DECIMAL_COMMA.fullmatch(cell) else cell


def dialect_of(first_line: str, following: Iterable[str]) -> Dialect:
    """The dialect of a CSV whose header line is `first_line` (without its line end), and
    `following` the lines after it (only read when the header holds several separators)."""
    counts = _separators(first_line)
    present = [separator for separator, count in counts.items() if count]
    if len(present) <= 1:
        return Dialect(present[0] if present else ",")
    sample = [line for line in itertools.islice(following, SAMPLE_LINES) if line.strip()]
    steady = [s for s in present if sample and all(_separators(x)[s] == counts[s] for x in sample)]
    if len(steady) == 1:
        return Dialect(steady[0])
    names = [SEPARATORS[separator] for separator in present]
    seen = ", ".join(names[:-1]) + " and " + names[-1]
    raise CsvRefused(
        AMBIGUOUS_DELIMITER,
        f"the header line holds {seen}, and the lines after it do not show which one "
        "separates the columns; separate them with one kind only (commas, semicolons or tabs) "
        "and put any cell that holds it in double quotes",
    )


def _separators(line: str) -> dict[str, int]:
    """How often each separator occurs outside double quotes (a doubled quote toggles twice)."""
    outside = "".join(line.split('"')[::2])
    return {separator: outside.count(separator) for separator in SEPARATORS}


def header_key(name: str) -> str:
    """A column name as it is matched: case, spaces around it and `_` against space ignored."""
    return " ".join(name.replace("_", " ").split()).casefold()


def match_columns(
    header: Sequence[str], features: Sequence[str], added: Sequence[str] = ()
) -> dict[str, int]:
    """Where each feature is in the header, in any order; other columns are kept, not faults.

    `added`: the columns the answer appends, which the header may not have already.
    """
    wanted = {header_key(name): name for name in features}
    positions: dict[str, int] = {}
    for position, raw in enumerate(header):
        feature = wanted.get(header_key(raw))
        if feature is None:
            continue
        if feature in positions:
            raise CsvRefused(
                REPEATED_COLUMN,
                f"the header names the column {feature} twice (columns {positions[feature] + 1} "
                f"and {position + 1}); keep one",
            )
        positions[feature] = position
    missing = [name for name in features if name not in positions]
    if missing:
        raise _missing_columns(header, features, missing)
    present = {header_key(raw) for raw in header}
    clashes = [name for name in added if header_key(name) in present]
    if clashes:
        raise CsvRefused(
            COLUMN_CLASH,
            f"the header already has a column named {clashes[0]}, which the prediction adds; "
            "rename or remove that column",
        )
    return positions


def _missing_columns(
    header: Sequence[str], features: Sequence[str], missing: Sequence[str]
) -> CsvRefused:
    expected = ", ".join(features)
    wanted = {header_key(name) for name in features}
    for separator, plural in _UNREAD_SEPARATORS.items():
        cells = {header_key(cell) for name in header for cell in name.split(separator)}
        if any(separator in name for name in header) and wanted <= cells:
            return CsvRefused(
                WRONG_DELIMITER,
                f"the header is separated by {plural}, which are not read; separate the columns "
                f"{expected} with commas, semicolons or tabs",
            )
    found = ", ".join(_shown(name) for name in header[:10]) + (", ..." if len(header) > 10 else "")
    near = meant_by((name for name in header if header_key(name) not in wanted), features)
    return CsvRefused(
        MISSING_COLUMNS,
        f"the header has no column {', '.join(missing)}; the header row must name the columns "
        f"{expected} (in any order and any case; other columns are kept). Found: {found}",
        tuple(Problem(None, name, missing_reason(name, near)) for name in missing),
    )


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:40] + "...")


def field_count(found: int, width: int) -> str:
    """Why a row with `found` fields is not read, the header having `width`."""
    return f"has {found} fields; the header has {width}"


def header_row(names: Sequence[str], separator: str) -> str:
    """The header line an answer or output starts with (CRLF included): a name that holds any
    separator is quoted, so that the line reads back in this layout (`dialect_of`)."""
    special = (*SEPARATORS, '"', "\r", "\n")
    cells = [
        '"' + name.replace('"', '""') + '"' if any(c in name for c in special) else name
        for name in names
    ]
    return separator.join(cells) + "\r\n"


def written(cell: str, separator: str) -> str:
    """A cell as a CSV writer writes it: quoted when it holds the separator, a quote or a line
    end (minimal quoting, as the csv module does)."""
    if separator in cell or any(c in cell for c in '"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell
