"""The block reader reads what the csv module reads: rows, errors, and line numbers counted as a
spreadsheet counts them (one per record, a blank one too); and the number and float helpers give
what float() and repr() give."""

from __future__ import annotations

import csv
import gzip
import io
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codecs import float_texts
from shared.codecs._csv_reader import CsvFile, NotCsv, NotUtf8
from shared.validation._numbers import numeric_cells
from shared.validation._values import NUMBER


def oracle(text: str) -> tuple[list[str] | None, list[tuple]]:
    """Header and (line, cells) of every row after it, read by the csv module record by record:
    a row's line is its record's number, as a spreadsheet shows it."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header, rows = None, []
    for line, cells in enumerate(reader, 1):
        if not cells:
            continue
        if header is None:
            header = cells
        else:
            rows.append((line, cells))
    return header, rows


def read_all(data: bytes, block_bytes: int, size: int) -> tuple[list[str] | None, list[tuple]]:
    file = CsvFile(io.BufferedReader(io.BytesIO(data)), block_bytes=block_bytes)  # type: ignore[arg-type]
    header = file.header()
    if header is None:
        return None, []
    rows = []
    for chunk in file.chunks(len(header), size):
        assert 0 < len(chunk) <= size
        well_formed = list(zip(chunk.lines, zip(*chunk.columns, strict=True), strict=True))
        if chunk.text is not None:  # rows kept as written are the rows' cells, joined
            assert chunk.text == [",".join(cells) for _, cells in well_formed]
        rows += [(line, list(cells)) for line, cells in well_formed]
        rows += [(line, cells) for line, cells in chunk.ragged]
    return header, sorted(rows, key=lambda row: row[0])


cells = st.text(alphabet=st.sampled_from(list('ab 1,"\r\n=é')), max_size=5)
line_ends = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def csv_texts(draw: st.DrawFn) -> str:
    """Mostly plain rows, some quoted, some ragged, some blank, mixed line ends."""
    width = draw(st.integers(1, 4))
    lines = [",".join(f"h{i}" for i in range(width))]
    for _ in range(draw(st.integers(0, 30))):
        kind = draw(st.sampled_from(["plain", "plain", "plain", "quoted", "ragged", "blank"]))
        if kind == "blank":
            lines.append("")
            continue
        count = width if kind != "ragged" else draw(st.integers(1, 6))
        row = [draw(st.text(alphabet="ab1 =-", max_size=4)) for _ in range(count)]
        if kind == "quoted":
            row = [
                '"' + draw(cells).replace('"', '""') + '"' if draw(st.booleans()) else c
                for c in row
            ]
        lines.append(",".join(row))
    ends = [draw(line_ends) for _ in lines]
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    return text if draw(st.booleans()) else text.rstrip("\r\n")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=csv_texts(), block_bytes=st.integers(1, 64), size=st.integers(1, 12))
def test_rows_and_lines_are_the_csv_modules_whatever_the_block_and_chunk_size(
    text, block_bytes, size
):
    expected = oracle(text)

    assert read_all(text.encode(), block_bytes, size) == expected


def csv_error(text: str) -> tuple[int, str] | None:
    """Where (the record it was reading) and why the csv module stops reading `text`, if it
    does."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records = 0
    try:
        for _ in reader:
            records += 1
    except csv.Error as error:
        return records + 1, str(error)
    return None


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list('a,"\r\n\x00')), max_size=40))
def test_malformed_text_fails_where_the_csv_module_fails(text):
    error = csv_error(text)

    if error is None:
        assert read_all(text.encode(), 7, 3) == oracle(text)
        return
    with pytest.raises(NotCsv) as caught:
        read_all(text.encode(), 7, 3)
    assert (caught.value.line, caught.value.reason) == error


def test_gzip_and_a_byte_order_mark_are_read_through():
    text = "id,age\r\nA,35\r\nB,36\r\n"

    plain = read_all(text.encode(), 5, 10)

    assert plain == (["id", "age"], [(2, ["A", "35"]), (3, ["B", "36"])])
    assert read_all(gzip.compress(("\ufeff" + text).encode()), 5, 10) == plain


def test_a_field_longer_than_the_csv_limit_fails_as_the_csv_module_does():
    text = "a,b\n1," + "x" * (csv.field_size_limit() + 1) + "\n"

    with pytest.raises(NotCsv, match="field larger than field limit"):
        read_all(text.encode(), 1 << 20, 10)


def test_invalid_utf8_names_its_line():
    data = b"a,b\n1,2\n3,\xff\n"

    with pytest.raises(NotUtf8) as caught:
        read_all(data, 1 << 20, 10)

    assert caught.value.line == 3


number_texts = st.one_of(
    st.floats(allow_nan=False).map(repr),
    st.integers(-(10**30), 10**30).map(str),
    st.from_regex(
        re.compile(r"[ \t]?[-+]?[0-9]{0,3}\.?[0-9]{0,3}([eE][-+]?[0-9]{1,3})?[ ]?"), fullmatch=True
    ),
    st.sampled_from(["-0", "-0.0", "007", "1_000", "nan", "inf", "1,5", "", "[1]", "true", "5."]),
)


@settings(max_examples=400, deadline=None)
@given(raw=st.lists(number_texts, max_size=8))
def test_numeric_cells_read_as_float_reads_each_cell(raw):
    every_cell_a_number = all(NUMBER.fullmatch(cell) for cell in raw)

    values = numeric_cells(raw)

    if not every_cell_a_number:
        assert values is None
        return
    expected = [float(cell) for cell in raw]
    assert values is not None
    assert [v.hex() for v in values.tolist()] == [v.hex() for v in expected]


@given(
    values=st.lists(
        st.floats(width=64) | st.floats(-1e-3, 1e-3) | st.sampled_from([0.0, -0.0, 1e16, 1e-5]),
        max_size=20,
    )
)
def test_float_texts_are_repr(values):
    assert float_texts(np.array(values, dtype=float)) == [repr(v) for v in values]


def test_float_texts_of_nothing_is_nothing():
    assert float_texts(np.empty(0)) == []
    assert not math.isnan(float(float_texts(np.array([1.5]))[0]) - 1.5)
