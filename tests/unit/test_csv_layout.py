"""The CSV layout: which separator a header line shows, how a decimal comma is read and written,
how header names are matched, and the words and lines a refused CSV or faulty row gets."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.codecs import (
    AMBIGUOUS_DELIMITER,
    COLUMN_CLASH,
    MISSING_COLUMNS,
    REPEATED_COLUMN,
    WRONG_DELIMITER,
    CsvFile,
    CsvRefused,
    Dialect,
    header_row,
    match_columns,
)
from shared.codecs._csv_layout import SAMPLE_LINES, dialect_of
from shared.errors import Problem, one_line
from shared.validation._values import NUMBER

FEATURES = ("age", "gender", "income")


@pytest.mark.parametrize(
    ("first", "following", "separator"),
    [
        ("age,gender,income", [], ","),
        ("age;gender;income", ["35;F;52000,50"], ";"),  # the decimal comma is no separator
        ("Age\tGender\tIncome", ["35\tF\t52,000"], "\t"),
        ("age", ["35"], ","),  # one column
        ('"age;years",gender,income', [], ","),  # a separator inside quotes is a name's
        ('"a,b";gender;income', [], ";"),
        ("id,notes;misc,age", ["1,x,35", "2,y;z,36"], ","),  # the rows settle it
        ("income, EUR\tage", ["52000\t35", "", "1\t2"], "\t"),  # blank lines settle nothing
    ],
)
def test_the_separator_is_the_one_the_header_line_shows(
    first: str, following: list[str], separator: str
) -> None:
    assert dialect_of(first, following) == Dialect(separator)


@pytest.mark.parametrize(
    ("first", "following"),
    [
        ("age,gender;income", ["35,F;52000"]),  # both steady
        ("age,gender;income", []),  # nothing to settle it
        ("a,b;c\td", ["1,2;3\t4", "1,2,3"]),
    ],
)
def test_a_header_with_two_separators_the_rows_do_not_settle_is_refused(
    first: str, following: list[str]
) -> None:
    with pytest.raises(CsvRefused) as caught:
        dialect_of(first, following)

    assert caught.value.code == AMBIGUOUS_DELIMITER
    assert "holds commas" in caught.value.message
    assert "semicolons" in caught.value.message.split(";")[0]
    assert "separate them with one kind only" in caught.value.message


def test_only_the_first_lines_after_the_header_are_read() -> None:
    settled = ["1,2;3"] * SAMPLE_LINES  # commas: one each, as the header; semicolons too

    def lines():
        yield from settled
        raise AssertionError("read past the sample")

    with pytest.raises(CsvRefused):
        dialect_of("a,b;c", lines())


names = st.lists(
    st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=8),
    min_size=1,
    max_size=4,
).filter(lambda found: found != [""])


@given(names=names, separator=st.sampled_from([",", ";", "\t"]))
def test_a_header_row_we_write_reads_back_as_the_same_names(names: list[str], separator: str):
    file = CsvFile.of_text(header_row(names, separator) + separator.join(["1"] * len(names)))

    assert file.header() == names
    if len(names) > 1:
        assert file.dialect == Dialect(separator)


@pytest.mark.parametrize(
    ("cell", "read"),
    [
        ("52000,50", "52000.50"),
        (" 1,5 ", " 1.5 "),
        ("-0,5", "-0.5"),
        (",5", ".5"),
        ("1,5E+03", "1.5E+03"),
        ("35", "35"),
        ("52.5", "52.5"),  # a point still reads
        ("52.000,50", "52.000,50"),  # a thousands separator: left for the validator to refuse
        ("1,234,567", "1,234,567"),
        ("52,5 EUR", "52,5 EUR"),
        ("", ""),
    ],
)
def test_a_semicolon_file_reads_a_decimal_comma_and_nothing_else(cell: str, read: str) -> None:
    assert Dialect(";").numbers_read([cell]) == [read]
    assert Dialect(",").numbers_read([cell]) == [cell]  # nor does any other file
    assert Dialect("\t").numbers_read([cell]) == [cell]


def with_a_point(cell: str) -> str:
    """A cell as a semicolon file reads it, by its own definition: one comma, no point, and a
    number by the schema's rule once the comma is a point."""
    pointed = cell.replace(",", ".")
    one_comma = cell.count(",") == 1 and "." not in cell
    return pointed if one_comma and NUMBER.fullmatch(pointed) else cell


column_cells = st.lists(
    st.sampled_from(["52000,5", "35", "", ",", ",5", "5,", " -1,5e3 ", "1,2,3", "52.000,50", "F"])
    | st.from_regex(r"[-+ ]?[0-9]{0,3},?[0-9]{0,3}([eE][-+]?[0-9])?", fullmatch=True),
    max_size=30,
)


@given(column_cells)
def test_a_whole_column_reads_as_each_of_its_cells_would(cells: list[str]) -> None:
    assert Dialect(";").numbers_read(cells) == [with_a_point(cell) for cell in cells]


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_decimal_comma_written_reads_back_as_the_same_float(value: float) -> None:
    (written,) = Dialect(";").numbers_written([repr(value)])

    assert "." not in written
    assert float(Dialect(";").numbers_read([written])[0]) == value
    assert Dialect(",").numbers_written([repr(value)]) == [repr(value)]


@pytest.mark.parametrize(
    "header",
    [
        ["Age", "Gender", "Income"],
        [" age ", "GENDER", "income "],
        ["id", "INCOME", "", "gender", "age", "id"],  # other columns may be unnamed or repeat
    ],
)
def test_header_names_match_ignoring_case_and_surrounding_spaces(header: list[str]) -> None:
    positions = match_columns(header, FEATURES)

    assert {name: header[at].strip().casefold() for name, at in positions.items()} == {
        name: name for name in FEATURES
    }


@pytest.mark.parametrize(
    ("header", "code", "words"),
    [
        (["age", "gender"], MISSING_COLUMNS, "the header has no column income"),
        (["Alter", "Geschlecht"], MISSING_COLUMNS, "Found: 'Alter', 'Geschlecht'"),
        (["age|gender|income"], WRONG_DELIMITER, "separated by pipes, which are not read"),
        (["age", "gender", "income", " AGE"], REPEATED_COLUMN, "age twice (columns 1 and 4)"),
        (["age", "gender", "income", "Purchase Amount"], COLUMN_CLASH, "named purchase_amount"),
    ],
)
def test_a_header_that_does_not_fit_says_what_was_seen_and_what_would_work(
    header: list[str], code: str, words: str
) -> None:
    with pytest.raises(CsvRefused) as caught:
        match_columns(header, FEATURES, ("purchase_amount",))

    assert caught.value.code == code
    assert words in caught.value.message


def test_missing_columns_are_named_as_problems_without_a_row() -> None:
    with pytest.raises(CsvRefused) as caught:
        match_columns(["id", "Age"], FEATURES)

    assert caught.value.problems == (
        Problem(None, "gender", "missing column"),
        Problem(None, "income", "missing column"),
    )


def test_lines_count_records_as_a_spreadsheet_shows_them() -> None:
    text = 'h,x\r\n\r\n"two\r\nlines",1\r\n3,4\r\n\r\n5,6\r\n'  # records 1 to 6

    file = CsvFile.of_text(text)
    assert file.header() == ["h", "x"]
    (chunk,) = file.chunks(2, 100)

    assert chunk.lines == [3, 4, 6]
    records = list(csv.reader(io.StringIO(text, newline="")))
    assert records[2:4] == [["two\r\nlines", "1"], ["3", "4"]]  # the csv module's 3rd and 4th


def test_a_problem_names_its_line_only_when_it_has_one() -> None:
    on_a_line = Problem(1, "age", "must be a number", line=3)
    nowhere = Problem(None, None, "too many")

    assert on_a_line.to_dict() == {
        "row": 1,
        "field": "age",
        "reason": "must be a number",
        "line": 3,
    }
    assert Problem(1, "age", "x").to_dict() == {"row": 1, "field": "age", "reason": "x"}
    assert one_line("1 of 2 rows are invalid", (on_a_line, nowhere)) == (
        "1 of 2 rows are invalid: row 1 (line 3), age: must be a number; too many"
    )
