"""Batches (more rows than the plain-Python path takes): the same 200 rows as JSON and as CSV
get the same answers, and name the same rows when some are bad."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from models import data
from tests.http.support import (
    MODELS,
    PREDICTION,
    RTOL,
    csv_body,
    csv_rows,
    features,
    half_width,
    predicted,
)


def rows_of(name: str) -> list[dict[str, Any]]:
    """200 rows as a user's export holds them: numbers, and categories as the schema spells them."""
    table = (
        data.customers(200, seed=5, dirty=False) if name == "customer_needs" else data.markets(200)
    )
    return [
        dict(zip(features(name), row, strict=True))
        for row in table[features(name)].itertuples(index=False)
    ]


def as_json(client: FlaskClient, rows: list[dict[str, Any]], **parameters: Any) -> Any:
    return client.post("/", json={"instances": rows, "parameters": parameters})


def as_csv(client: FlaskClient, name: str, rows: list[dict[str, Any]], query: str = "") -> Any:
    header = ["id", *features(name)]
    body = csv_body(
        header, [[f"r{i}", *(row[f] for f in features(name))] for i, row in enumerate(rows)]
    )
    return client.post(f"/{query}", data=body, content_type="text/csv")


@pytest.mark.parametrize("name", MODELS)
def test_200_rows_get_the_same_answers_as_json_and_as_csv(
    clients: dict[str, FlaskClient], name: str
) -> None:
    rows = rows_of(name)

    by_json = as_json(clients[name], rows)
    by_csv = as_csv(clients[name], name, rows)

    assert by_json.status_code == by_csv.status_code == 200
    from_json = by_json.get_json()["predictions"]
    from_csv = [float(row[PREDICTION[name]]) for row in csv_rows(by_csv.data)]
    assert from_csv == from_json
    assert from_json == pytest.approx(predicted(name, rows), rel=RTOL)
    assert [row["id"] for row in csv_rows(by_csv.data)] == [f"r{i}" for i in range(200)]


@pytest.mark.parametrize("name", MODELS)
def test_200_rows_get_the_same_intervals_as_json_and_as_csv(
    clients: dict[str, FlaskClient], name: str
) -> None:
    rows, target = rows_of(name), PREDICTION[name]

    by_json = as_json(clients[name], rows, interval=0.9).get_json()["predictions"]
    by_csv = csv_rows(as_csv(clients[name], name, rows, "?interval=0.9").data)

    width = half_width(name, 0.9)
    for answer, row, value in zip(by_json, by_csv, predicted(name, rows), strict=True):
        assert float(row[target]) == answer[target] == pytest.approx(value, rel=RTOL)
        assert float(row[f"{target}_lower"]) == answer["interval"]["lower"]
        assert float(row[f"{target}_upper"]) == answer["interval"]["upper"]
        assert answer["interval"]["upper"] == pytest.approx(value + width, rel=RTOL)


def test_200_rows_with_bad_ones_name_the_same_rows_as_json_and_as_csv(
    customer: FlaskClient,
) -> None:
    rows = rows_of("customer_needs")
    rows[0] = {**rows[0], "age": 300}
    rows[150] = {**rows[150], "gender": "robot"}
    rows[199] = {**rows[199], "income": "lots"}

    by_json = as_json(customer, rows)
    by_csv = as_csv(customer, "customer_needs", rows)

    assert by_json.status_code == by_csv.status_code == 422
    assert by_csv.get_json() == by_json.get_json()
    details = by_json.get_json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [
        (0, "age"),
        (150, "gender"),
        (199, "income"),
    ]
    assert by_json.get_json()["error"]["message"] == "3 of 200 rows are invalid"
