"""Upload scoring gives, row for row, what the csv module, the record validator and the
pipeline give one row at a time, on the column path and on the reference path alike."""

from __future__ import annotations

import csv
import dataclasses
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

BUNDLED = LocalFolder(Path(__file__).resolve().parents[2] / "models")


@pytest.fixture(scope="module", params=["serving form", "pipeline only"])
def model(request: pytest.FixtureRequest) -> LoadedModel:
    loaded = load_current(BUNDLED, "customer_needs")
    return loaded if request.param == "serving form" else dataclasses.replace(loaded, serving=None)


def expected(model: LoadedModel, text: str, interval: float | None) -> tuple[list, list]:
    """Scored and rejected rows, one row at a time."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows, previous = [], 0
    for cells in reader:
        line, previous = previous + 1, reader.line_num
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
    scored = []
    for (cells, _), value in zip(valid, values, strict=True):
        extra = [] if interval is None else ["lower", "upper"]
        scored.append([*cells, float(value), *extra])
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
    model, rows, chunk_rows, interval
):
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
    got_values = [float(row[4]) for row in got_scored]
    assert got_values == pytest.approx([row[4] for row in want_scored], rel=1e-12)
    if interval is not None:
        assert all(float(r[5]) < float(r[4]) < float(r[6]) for r in got_scored)
