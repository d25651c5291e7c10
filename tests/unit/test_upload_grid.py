"""Upload scoring through grids (plain chunks read as byte offsets, numeric columns straight to
floats) writes the same scored.csv and rejected.csv bytes and counts as splitting every cell:
for clean files, which take the grid path, and for files with odd cells anywhere."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.codecs._csv_grid import plain_grid
from shared.codecs._csv_reader import CsvFile
from shared.predict import Options
from shared.store import LoadedModel, LocalFolder, load_current
from shared.uploads import FileProblem, score_stream

BUNDLED = LocalFolder(Path(__file__).resolve().parents[2] / "models")
FEATURES = ["age", "gender", "income"]


@functools.cache
def model() -> LoadedModel:
    return load_current(BUNDLED, "customer_needs")


def outputs(
    data: bytes, chunk_rows: int, interval: float | None, grids: bool, block_bytes: int = 1 << 20
) -> tuple[Any, ...]:
    scored, rejected = io.BytesIO(), io.BytesIO()
    try:
        tally = score_stream(
            io.BufferedReader(io.BytesIO(data)),  # type: ignore[arg-type]
            model(),
            Options(interval=interval),
            chunk_rows,
            scored.write,
            rejected.write,
            grids=grids,
            block_bytes=block_bytes,
        )
    except FileProblem as exc:
        return ("problem", exc.code, str(exc))
    counts = (tally.read, tally.scored, tally.rejected, tally.reasons, tally.outside_counted())
    return scored.getvalue(), rejected.getvalue(), counts


plain_ages = st.integers(0, 130).map(str) | st.sampled_from(["35.5", "18.", "150", "200"])
plain_incomes = st.integers(0, 500_000).map(str) | st.sampled_from(["52000.25", "0.5", "9999999"])
plain_genders = st.sampled_from(["F", "M", "male", "female", "other"])
plain_notes = st.sampled_from(["", "C-1", "note", "x y", "é"])
PLAIN = {"age": plain_ages, "income": plain_incomes, "gender": plain_genders, "note": plain_notes}

ODD = st.sampled_from(
    [
        '"q"',
        '"a,b"',
        "",
        " ",
        "=1+1",
        "+1",
        "-1",
        "@x",
        "\tx",
        "x\t",
        "-0",
        ".5",
        "1.",
        "1e5",
        "1e400",
        "inf",
        "nan",
        "007",
        "00.5",
        "1.2.3",
        "123456789012345678901234",
        "robot",
        " male ",
        "MALE",
        "é",
        "\ufeffx",
        "x\u00a0",
    ]
)


@st.composite
def upload_files(draw: st.DrawFn, odd: bool) -> bytes:
    """A header naming the model's columns (in any order, any case) and others; rows of plain
    cells, and when `odd`, odd cells, ragged rows and blank lines at random places."""
    names = draw(st.permutations([*FEATURES, "note", "note2"][: draw(st.integers(3, 5))]))
    header = [name.upper() if draw(st.booleans()) else name for name in names]
    kinds = [name.rstrip("2") for name in names]
    lines = [",".join(header)]
    for _ in range(draw(st.integers(0, 25))):
        cells = [draw(PLAIN[kind]) for kind in kinds]
        if odd and draw(st.integers(0, 3)) == 0:
            cells[draw(st.integers(0, len(cells) - 1))] = draw(ODD)
        if odd and draw(st.integers(0, 9)) == 0:
            cells = cells[:-1] if draw(st.booleans()) else [*cells, "extra"]
        lines.append(",".join(cells))
        if odd and draw(st.integers(0, 9)) == 0:
            lines.append("")
    end = draw(st.sampled_from(["\n", "\r\n"])) if odd else "\n"
    bom = draw(st.sampled_from(["", "\ufeff"])) if odd else ""
    final = draw(st.booleans()) if odd else True
    return (bom + end.join(lines) + (end if final else "")).encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upload_files(odd=False), st.integers(1, 12), st.sampled_from([None, 0.9]))
def test_clean_files_take_the_grid_path_and_score_the_same(data, chunk_rows, interval):
    file = CsvFile(io.BufferedReader(io.BytesIO(data)))  # type: ignore[arg-type]
    header = file.header()
    assert header is not None
    assert all(c.grid is not None for c in file.chunks(len(header), chunk_rows, grids=True))
    assert outputs(data, chunk_rows, interval, True) == outputs(data, chunk_rows, interval, False)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upload_files(odd=True), st.integers(1, 12), st.sampled_from([None, 0.9]))
def test_files_with_odd_cells_score_the_same_through_grids(data, chunk_rows, interval):
    assert outputs(data, chunk_rows, interval, True) == outputs(data, chunk_rows, interval, False)


def test_a_formula_in_a_column_the_model_does_not_use_is_neutralised_from_a_grid():
    data = b"note,age,gender,income\n=1,35,F,52000\nok,150,M,52000\n"
    scored, rejected, _ = outputs(data, 10, None, True)
    assert outputs(data, 10, None, False)[:2] == (scored, rejected)
    assert scored.splitlines()[1].startswith(b"'=1,35,F,52000,")
    assert rejected.splitlines()[1] == b"3,age: must be between 18 and 100,ok,150,M,52000"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(upload_files(odd=True), st.integers(1, 12), st.integers(1, 64))
def test_rows_and_characters_across_block_ends_score_the_same_through_grids(
    data, chunk_rows, block_bytes
):
    expected = outputs(data, chunk_rows, None, False)
    assert outputs(data, chunk_rows, None, True, block_bytes) == expected
    assert outputs(data, chunk_rows, None, False, block_bytes) == expected


BAD_BYTES = st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\x80", b"\xed\xa0\x80", b"\xc0\xaf"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    upload_files(odd=True),
    st.floats(0, 1),
    BAD_BYTES,
    st.integers(1, 12),
    st.sampled_from([1, 7, 40, 1 << 20]),
)
def test_invalid_utf8_anywhere_is_the_same_problem_through_grids(
    data, where, bad, chunk_rows, block_bytes
):
    at = int(where * len(data))
    broken = data[:at] + bad + data[at:]
    expected = outputs(broken, chunk_rows, None, False, block_bytes)
    assert outputs(broken, chunk_rows, None, True, block_bytes) == expected


def json_numbers(cells: list[str]) -> list[float] | None:
    """What the grid reads a column of cells as: floats when each is a JSON number written
    with digits and at most one dot only, 20 characters at most; else None (the text path)."""
    numbers = []
    for cell in cells:
        try:
            value = json.loads(cell)
        except ValueError:
            return None
        if not 0 < len(cell) <= 20 or set(cell) - set("0123456789.") or isinstance(value, bool):
            return None
        numbers.append(float(value))
    return numbers


NUMBER_CELLS = st.from_regex(r"\A[0-9]{1,17}(\.[0-9]{0,3})?\Z") | st.sampled_from(
    ["0", "00", "01", "7", "1.", ".5", "999999999999999", "1000000000000000", "é", "1e5"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(NUMBER_CELLS, min_size=1, max_size=30))
def test_a_grid_reads_a_column_of_numbers_as_json_would(cells):
    grid = plain_grid(("\n".join(f"{cell},x" for cell in cells) + "\n").encode(), 2)
    assert grid is not None
    numbers = grid.numbers(0)
    expected = json_numbers(cells)
    assert (None if numbers is None else numbers.tolist()) == expected
