"""Large plain CSV bodies are read as a grid (numeric columns straight to floats); every body
gets, byte for byte, the answer or the error that the row reader gives it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from shared.codecs import _csv, read_csv
from shared.schema import MODELS as SERVED

ROWS = 3_500  # past GRID_MIN_BYTES
HEADERS = {
    "customer_needs": ["age", "gender", "income"],
    "market_trend": ["sales", "population", "gdp"],
}
ODD_NUMBERS = [
    "",
    " ",
    "35 ",
    " 35",
    "+1",
    ".5",
    "1.",
    "1e5",
    "-0",
    "-0.0",
    "-5",
    "1e400",
    "inf",
    "NaN",
    "-inf",
    "1,000",
    "007",
    "0",
    "99999999999999999999999",
    "1.2.3",
    "x",
    "\ufeff1",
    '"1"',
    "1_0",
]
ODD_CATEGORIES = ["", " male", "FEMALE", "unknown", '"male"', "Other ", "é"]


def clean_body(model: str, seed: int) -> list[list[str]]:
    draw = random.Random(seed)  # noqa: S311 (test data)
    header = HEADERS[model]
    rows = [header]
    for _ in range(ROWS):
        if model == "customer_needs":
            cells = [f"{draw.uniform(18, 100):.3f}", draw.choice(["male", "female", "other"])]
            rows.append([*cells, str(draw.randrange(0, 200_000))])
        else:
            rows.append([f"{draw.uniform(1, 9000):.2f}", f"{draw.uniform(1, 900):.3f}", "4000.5"])
    return rows


def encode(rows: list[list[str]], line_end: str = "\n", bom: bool = False) -> bytes:
    text = line_end.join(",".join(row) for row in rows) + line_end
    return (("\ufeff" if bom else "") + text).encode()


def answers(client: TestClient, body: bytes) -> tuple[int, bytes]:
    response = client.post("/", content=body, headers={"Content-Type": "text/csv"})
    return response.status_code, response.content


def row_reader_answers(client: TestClient, body: bytes) -> tuple[int, bytes]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_csv, "GRID_MIN_BYTES", 1 << 62)
        return answers(client, body)


@pytest.mark.parametrize("model", list(HEADERS))
@pytest.mark.parametrize(("line_end", "bom"), [("\n", False), ("\r\n", True)])
def test_a_clean_body_is_read_as_a_grid_of_floats(
    clients: dict[str, TestClient], model: str, line_end: str, bom: bool
) -> None:
    body = encode(clean_body(model, 1), line_end, bom)

    table = read_csv(body, 10**6)
    columns = table.rows(SERVED[model].schema).columns or {}

    assert table.grid is not None
    assert all(isinstance(columns[name], np.ndarray) for name in columns if name != "gender")
    assert answers(clients[model], body) == row_reader_answers(clients[model], body)


@st.composite
def odd_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    model = draw(st.sampled_from(list(HEADERS)))
    rows = clean_body(model, draw(st.integers(0, 3)))
    for _ in range(draw(st.integers(0, 4))):
        row, column = draw(st.integers(1, ROWS)), draw(st.integers(0, 2))
        odd = ODD_CATEGORIES if HEADERS[model][column] == "gender" else ODD_NUMBERS
        rows[row][column] = draw(st.sampled_from(odd))
    if draw(st.booleans()):  # an extra column, or a row with one cell too many
        extra = draw(st.sampled_from(["id", "note", "age", "AGE"]))
        rows = [[*row, extra if at == 0 else str(at)] for at, row in enumerate(rows)]
    if draw(st.booleans()):
        rows[draw(st.integers(1, ROWS))].append("x")
    body = encode(rows, draw(st.sampled_from(["\n", "\r\n"])), draw(st.booleans()))
    if draw(st.booleans()):  # a blank line, a lone CR or a missing final line end
        at = draw(st.integers(len(body) // 2, len(body) - 1))
        body = body[:at] + draw(st.sampled_from([b"\n\n", b"\r", b""])) + body[at:]
    return model, body.rstrip(b"\n") if draw(st.booleans()) else body


@given(odd_bodies())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_odd_cells_give_the_row_readers_answers(
    clients: dict[str, TestClient], case: tuple[str, bytes]
) -> None:
    model, body = case
    assert answers(clients[model], body) == row_reader_answers(clients[model], body)
