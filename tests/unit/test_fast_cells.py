"""The fast paths of file scoring and CSV answers give what the general paths give: the one
search for formula starts in plain rows, and floats written by orjson straight from numpy."""

from __future__ import annotations

import io

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codecs import cell_texts, float_texts
from shared.codecs._csv_reader import CsvFile
from shared.uploads import neutralise_column
from shared.uploads._scoring import neutral_columns

# Cells that are odd at their start or anywhere: formula characters, numbers with signs,
# blanks, tabs, quotes, non-ASCII text, BOMs and spaces.
ODD = [
    "=1+1",
    "+5",
    "-0",
    "-3.5",
    "@x",
    "\tx",
    "x\t",
    "a=b",
    "",
    "  ",
    "é",
    "\ufeffx",
    '"q"',
    "1e999",
    "1 ",
]
cell = st.one_of(st.sampled_from(ODD), st.text("ab1.=+-@ é\t", max_size=4))


@st.composite
def files(draw: st.DrawFn) -> bytes:
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=30))
    header = ",".join(f"c{i}" for i in range(width))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    lines = [header, *(",".join(_quoted(c) for c in row) for row in rows)]
    return (draw(st.sampled_from(["", "\ufeff"])) + end.join(lines) + end).encode("utf-8")


def _quoted(value: str) -> str:
    return f'"{value.replace(chr(34), chr(34) * 2)}"' if '"' in value else value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(files(), st.integers(1, 7))
def test_neutral_columns_are_each_column_neutralised(data, size):
    file = CsvFile(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    header = file.header()
    assert header is not None
    for chunk in file.chunks(len(header), size):
        assert neutral_columns(chunk) == [neutralise_column(c) for c in chunk.columns]


def test_a_formula_start_anywhere_in_a_plain_chunk_is_found():
    file = CsvFile.of_text("a,b\n1,2\n3,=4\n")
    file.header()
    (chunk,) = file.chunks(2, 10)
    assert chunk.text is not None
    assert neutral_columns(chunk) == [["1", "3"], ["2", "'=4"]]


finite = st.floats(allow_nan=False, allow_infinity=False)


@given(st.lists(st.one_of(finite, st.sampled_from([-0.0, 1e16, 1e22, 2.0**53, 1e-4]))))
def test_float_texts_of_arrays_in_any_layout_are_repr(values):
    array = np.array(values, dtype=float)
    expected = [repr(v) for v in values]
    assert float_texts(array) == expected
    assert float_texts(np.repeat(array, 2)[::2]) == expected  # not one block in memory


def test_float_texts_of_integers_stay_integers():
    assert float_texts(np.array([1, -2, 30])) == ["1", "-2", "30"]


@given(st.lists(st.one_of(st.text(max_size=3), finite, st.none())))
def test_cell_texts_of_lists_are_each_cell(values):
    expected = ["" if v is None or v != v else v if isinstance(v, str) else repr(v) for v in values]
    assert cell_texts(values) == expected
