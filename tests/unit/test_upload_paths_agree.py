"""Upload scoring gives, row for row, what the csv module, the record validator, the pipeline
and tests/expected.py (bounds, the domain, the training range) give one row at a time, on the
column path and on the reference path alike."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.predict import Options
from shared.store import LoadedModel, LocalFolder, load_current
from shared.uploads import neutralise, score_stream
from shared.validation import validate_records
from tests import expected as definitions

BUNDLED = LocalFolder(Path(__file__).resolve().parents[2] / "models")


@functools.cache
def loaded(path: str) -> LoadedModel:
    model = load_current(BUNDLED, "customer_needs")
    return model if path == "serving form" else dataclasses.replace(model, serving=None)


@pytest.fixture(scope="module", params=["serving form", "pipeline only"])
def path(request: pytest.FixtureRequest) -> str:
    """The model's name for the path (not the model: Hypothesis prints a failing example's
    arguments, and a model's repr is its whole metadata)."""
    return str(request.param)


def expected(model: LoadedModel, text: str, interval: float | None) -> tuple[list, list]:
    """Scored and rejected rows, one row at a time."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    for line, cells in enumerate(reader, 1):  # a record's line, as a spreadsheet counts them
        if cells:
            rows.append((line, cells))
    (_, header), rows = rows[0], rows[1:]
    at = {name.strip().casefold(): position for position, name in enumerate(header)}
    valid, rejected = [], []
    for line, cells in rows:
        if len(cells) != len(header):
            reason = f"has {len(cells)} fields; the header has {len(header)}"
            rejected.append([str(line), reason, *map(neutralise, cells)])
            continue
        record = {name: cells[at[name]] for name in model.schema.feature_names}
        canonical, _, problems = validate_records([record], model.schema)
        if problems:
            reason = "; ".join(f"{p.field}: {p.reason}" for p in problems)
            rejected.append([str(line), reason, *map(neutralise, cells)])
        else:
            valid.append(([*map(neutralise, cells)], canonical[0]))
    values = model.pipeline.predict(pd.DataFrame([c for _, c in valid])) if valid else []
    metadata = model.metadata
    scored = []
    for (cells, canonical), raw in zip(valid, values, strict=True):
        value = definitions.in_domain(metadata, float(raw))
        bounds: list[float | None] = []
        if interval is not None:
            given = definitions.interval(metadata, canonical, value, interval)
            bounds = [None, None] if given is None else list(given)
        outside = ";".join(definitions.outside(metadata, canonical))
        scored.append([*cells, value, *bounds, outside])
    return scored, rejected


def scored(model: LoadedModel, text: str, chunk_rows: int, interval: float | None):
    out, rejected = io.BytesIO(), io.BytesIO()
    score_stream(
        io.BufferedReader(io.BytesIO(text.encode())),  # type: ignore[arg-type]
        model,
        Options(interval=interval),
        chunk_rows,
        out.write,
        rejected.write,
    )
    read = [
        list(csv.reader(io.StringIO(b.getvalue().decode(), newline=""))) for b in (out, rejected)
    ]
    return read[0][1:], read[1][1:]


ages = st.sampled_from(["35", " 42 ", "18", "100", "17", "150", "4.2e1", "abc", "", "-0", "1e999"])
genders = st.sampled_from(["F", "female", " male ", "O", "x", "", "robot", "MAN"])
incomes = st.sampled_from(["52000", "0", "1e7", "-5", "12.5", "1_000", "nan", " 7 "])
notes = st.sampled_from(["", "plain", "=SUM(A1)", "-3", "+x", '"quoted, with comma"', "@a"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(ages, genders, incomes, notes, st.booleans(), st.booleans()), max_size=40
    ),
    chunk_rows=st.integers(1, 50),
    interval=st.sampled_from([None, 0.9]),
)
def test_every_row_is_scored_or_rejected_as_one_row_at_a_time_would_be(
    path, rows, chunk_rows, interval
):
    model = loaded(path)
    lines = ["Note,age,GENDER,income"]
    for age, gender, income, note, ragged, blank in rows:
        lines.append(f"{note},{age},{gender},{income}" + (",extra" if ragged else ""))
        if blank:
            lines.append("")
    text = "\r\n".join(lines) + "\r\n"

    got_scored, got_rejected = scored(model, text, chunk_rows, interval)
    want_scored, want_rejected = expected(model, text, interval)

    assert got_rejected == want_rejected
    assert [row[:4] for row in got_scored] == [row[:4] for row in want_scored]
    assert [row[-1] for row in got_scored] == [row[-1] for row in want_scored]
    got_numbers = [[None if v == "" else float(v) for v in row[4:-1]] for row in got_scored]
    want_numbers = [row[4:-1] for row in want_scored]
    assert [[v is None for v in row] for row in got_numbers] == [
        [v is None for v in row] for row in want_numbers
    ]  # a withheld bound is an empty cell
    for got, want in zip(got_numbers, want_numbers, strict=True):
        assert [v for v in got if v is not None] == pytest.approx(
            [v for v in want if v is not None], rel=1e-12
        )
    if interval is not None:
        bounded = [r for r in got_numbers if r[1] is not None]
        assert all(low <= value < high for value, low, high in bounded)
