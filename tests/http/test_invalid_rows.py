"""422: rows or options that break the model's schema, every fault named by row and field.

Rows are numbered from 0 in every protocol: the first instance of a JSON request, the first
data row of a CSV body (the header is not a row), the first call of a BigQuery batch (calls
with a NULL argument counted), the first element of an Open Inference tensor.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.http.support import bundled

GOOD = {"age": 35, "gender": "f", "income": 52000}
BAD = {"age": "abc", "gender": "robot", "income": -1}
CALIBRATION_ROWS = len(bundled("customer_needs").metadata["intervals"]["scores"])
BAD_FAULTS = [
    ("age", "must be a number"),
    ("gender", "must be one of female, male, other"),
    ("income", "must be between 0 and 1e+07"),
]


def faults(response: httpx.Response) -> list[tuple[int | None, str | None, str]]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    return [(d["row"], d["field"], d["reason"]) for d in error["details"]]


def message(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    return str(response.json()["error"]["message"])


def test_json_row_0_is_the_first_instance(customer: TestClient) -> None:
    response = customer.post("/", json={"instances": [BAD, GOOD, GOOD]})

    assert faults(response) == [(0, field, reason) for field, reason in BAD_FAULTS]
    assert message(response) == "1 of 3 rows are invalid"


def test_a_bare_object_is_row_0(customer: TestClient) -> None:
    assert faults(customer.post("/", json=BAD)) == [(0, f, r) for f, r in BAD_FAULTS]


def test_every_row_and_field_at_fault_is_named(customer: TestClient) -> None:
    instances = [
        GOOD,
        {"age": "NaN", "gender": "M", "income": 1},
        {"age": True, "gender": "robot", "income": -5, "email": "a@b.c"},
        {"gender": "f", "income": {"a": 1}},
        [300, "f", 1],
        {"age": 35, "gender": None, "income": "1e999"},
    ]

    response = customer.post("/", json={"instances": instances})

    assert faults(response) == [
        (1, "age", "must be a finite number"),
        (2, "email", "unknown field"),
        (2, "age", "must be a number"),
        (2, "gender", "must be one of female, male, other"),
        (2, "income", "must be between 0 and 1e+07"),
        (3, "age", "missing"),
        (3, "income", "must be a number"),
        (4, "age", "must be between 18 and 100"),
        (5, "gender", "missing"),
        (5, "income", "must be a finite number"),
    ]
    assert message(response) == "5 of 6 rows are invalid"


def test_an_instance_that_is_neither_an_object_nor_a_list_of_the_features_is_named(
    market: TestClient,
) -> None:
    instances = [[9000, 300, 13000], 5, [1, 2], "x"]

    response = market.post("/", json={"instances": instances})

    reason = "must be a JSON object or a list of 3 values (sales, population, gdp)"
    assert faults(response) == [(1, None, reason), (2, None, reason), (3, None, reason)]


def test_csv_row_0_is_the_first_data_row(customer: TestClient) -> None:
    body = b"id,age,gender,income\nA,35,f,100\nB,300,f,100\nC,35,,100\n"

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert faults(response) == [
        (1, "age", "must be between 18 and 100"),
        (2, "gender", "missing"),
    ]
    assert message(response) == "2 of 3 rows are invalid"


def test_a_csv_row_is_named_by_the_line_a_spreadsheet_shows_too(customer: TestClient) -> None:
    # Line 1 the header, 2 a blank line, 3 a record whose quoted cell spans two lines of text,
    # 4 the faulty row: a spreadsheet shows it in row 4, whatever the line ends in the text.
    body = b'id,age,gender,income\r\n\r\n"A\r\nsecond line",35,f,100\r\nB,300,f,100\r\n'

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == [
        {
            "row": 1,
            "field": "age",
            "reason": "must be between 18 and 100",
            "received": 300,
            "line": 4,
        }
    ]


def test_a_missing_csv_column_is_named_without_a_row(customer: TestClient) -> None:
    response = customer.post(
        "/", content=b"age,gender\n35,f\n", headers={"Content-Type": "text/csv"}
    )

    assert faults(response) == [(None, "income", "missing column")]


@pytest.mark.parametrize("body", [b"name;city\nA;B\n", b"id\nA\n", b"id\n"])
def test_a_csv_body_without_any_of_the_models_columns_names_them_all(
    customer: TestClient, body: bytes
) -> None:
    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert faults(response) == [
        (None, "age", "missing column"),
        (None, "gender", "missing column"),
        (None, "income", "missing column"),
    ]


def test_a_large_csv_body_without_any_of_the_models_columns_names_them_all(
    customer: TestClient,
) -> None:
    body = b"id\n" + b"A\n" * 100

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert faults(response) == [
        (None, "age", "missing column"),
        (None, "gender", "missing column"),
        (None, "income", "missing column"),
    ]


def test_open_inference_row_0_is_the_first_element(market: TestClient) -> None:
    body = {
        "inputs": [
            {"name": "sales", "shape": [3], "datatype": "FP64", "data": [-1, 9000, 9000]},
            {"name": "population", "shape": [3], "datatype": "FP64", "data": [300, 300, "x"]},
            {"name": "gdp", "shape": [3], "datatype": "FP64", "data": [13000, 13000, 13000]},
        ]
    }

    response = market.post("/v2/models/market_trend/infer", json=body)

    assert response.status_code == 422
    assert response.json() == {
        "error": "2 of 3 rows are invalid: row 0, sales: must be between 0.001 and 1e+06 "
        '(received -1); row 2, population: must be a number (received "x")'
    }


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"interval": 1.5}, [(None, "parameters.interval", "must be a number between 0 and 1")]),
        ({"interval": 0}, [(None, "parameters.interval", "must be a number between 0 and 1")]),
        ({"interval": True}, [(None, "parameters.interval", "must be a number between 0 and 1")]),
        ({"interval": "0.9"}, [(None, "parameters.interval", "must be a number between 0 and 1")]),
        (
            {"interval": 0.99999},
            [
                (
                    None,
                    "parameters.interval",
                    f"at most {CALIBRATION_ROWS / (CALIBRATION_ROWS + 1):.4f} "
                    f"with {CALIBRATION_ROWS} calibration rows",
                )
            ],
        ),
        ({"explain": "yes"}, [(None, "parameters.explain", "must be true or false")]),
        ({"strict": "yes"}, [(None, "parameters.strict", "must be true or false")]),
        ({"strict": 1}, [(None, "parameters.strict", "must be true or false")]),
        (
            {"colour": "red", "explain": 1},
            [
                (None, "parameters.colour", "unknown parameter"),
                (None, "parameters.explain", "must be true or false"),
            ],
        ),
    ],
)
def test_bad_parameters_are_named(
    customer: TestClient, parameters: dict[str, Any], expected: list[Any]
) -> None:
    response = customer.post("/", json={"instances": [GOOD], "parameters": parameters})

    assert faults(response) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("interval=2", [(None, "parameters.interval", "must be a number between 0 and 1")]),
        ("interval=high", [(None, "parameters.interval", "must be a number between 0 and 1")]),
        ("explain=maybe", [(None, "parameters.explain", "must be true or false")]),
        ("strict=maybe", [(None, "parameters.strict", "must be true or false")]),
        ("colour=red", [(None, "parameters.colour", "unknown parameter")]),
    ],
)
def test_bad_query_options_of_a_csv_request_are_named(
    customer: TestClient, query: str, expected: list[Any]
) -> None:
    response = customer.post(
        f"/?{query}", content=b"age,gender,income\n35,f,1\n", headers={"Content-Type": "text/csv"}
    )

    assert faults(response) == expected
