"""What the errors say, asked for over real HTTP as a newcomer would ask: a number written as a
spreadsheet writes it, a misspelt field, a batch too large for one request, a wrong path or the
other function's model. Each answer says what was received and what would work."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.conftest import TARGETS, StartFunction
from tests.integration.support import FunctionServer

PLAIN = (
    "must be a plain number such as 1234.5: currency signs and thousands separators are not read"
)
TIMEOUT = 30


@pytest.fixture
def customer(running: dict[str, FunctionServer]) -> FunctionServer:
    return running["customer_needs"]


def details(response: requests.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    return list(response.json()["error"]["details"])


def spreadsheet_file(path: Path, rows: list[list[str]]) -> bytes:
    """`rows` saved as a spreadsheet saves CSV: UTF-8 with a BOM, CRLF, quoted where needed."""
    with path.open("w", encoding="utf-8-sig", newline="") as file:
        csv.writer(file, lineterminator="\r\n").writerows(rows)
    return path.read_bytes()


def test_numbers_with_currency_signs_and_misspelt_fields_are_explained(
    customer: FunctionServer,
) -> None:
    instances = [
        {"age": 35, "gender": "F", "income": "$52,000"},
        {"Age": 40, "gender": "robot", "incme": 1, "email": "a@b.c"},
    ]

    response = requests.post(customer.url, json={"instances": instances}, timeout=TIMEOUT)

    assert details(response) == [
        {"row": 0, "field": "income", "reason": PLAIN, "received": "$52,000"},
        {"row": 1, "field": "Age", "reason": "unknown field (did you mean age?)"},
        {"row": 1, "field": "incme", "reason": "unknown field (did you mean income?)"},
        {"row": 1, "field": "email", "reason": "unknown field"},
        {"row": 1, "field": "age", "reason": "missing"},
        {
            "row": 1,
            "field": "gender",
            "reason": "must be one of female, male, other",
            "received": "robot",
        },
        {"row": 1, "field": "income", "reason": "missing"},
    ]


def test_a_spreadsheets_csv_file_gets_the_same_explanation(
    customer: FunctionServer, tmp_path: Path
) -> None:
    body = spreadsheet_file(
        tmp_path / "customers.csv",
        [
            ["customer_id", "age", "gender", "income"],
            ["A-1", "35", "F", "$52,000"],
            ["B-2", "61", "male", "52000 EUR"],
            ["C-3", "300", "male", "90000"],
        ],
    )

    response = requests.post(
        customer.url, data=body, headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
    )

    assert details(response) == [
        {"row": 0, "field": "income", "reason": PLAIN, "received": "$52,000", "line": 2},
        {"row": 1, "field": "income", "reason": PLAIN, "received": "52000 EUR", "line": 3},
        {
            "row": 2,
            "field": "age",
            "reason": "must be between 18 and 100",
            "received": 300,
            "line": 4,
        },
    ]


def test_the_one_line_protocols_say_what_was_received(customer: FunctionServer) -> None:
    values = [35, "F", "52,000"]
    tensors = [
        {"name": name, "shape": [1], "datatype": kind, "data": [value]}
        for name, kind, value in zip(
            ("age", "Gender", "income"), ("FP64", "BYTES", "FP64"), values, strict=True
        )
    ]
    v1 = f"{customer.url}/v1/models/customer_needs:predict"

    answers = {
        "v1": requests.post(v1, json={"instances": [values]}, timeout=TIMEOUT),
        "v2": requests.post(
            f"{customer.url}/v2/models/customer_needs/infer",
            json={"inputs": tensors},
            timeout=TIMEOUT,
        ),
        "bigquery": requests.post(
            f"{customer.url}/bigquery", json={"calls": [values]}, timeout=TIMEOUT
        ),
    }

    row = f'1 of 1 rows are invalid: row 0, income: {PLAIN} (received "52,000")'
    assert (answers["v1"].status_code, answers["v1"].json()) == (422, {"error": row})
    assert (answers["bigquery"].status_code, answers["bigquery"].json()) == (
        400,
        {"errorMessage": row},
    )
    assert answers["v2"].status_code == 422
    assert answers["v2"].json()["error"] == (
        "inputs do not match the model: Gender: unknown input (did you mean gender?); "
        "gender: missing input"
    )


def test_values_received_reach_the_answer_and_never_the_log(customer: FunctionServer) -> None:
    response = requests.post(
        customer.url, json={"age": 35, "gender": "zq-4242", "income": "$4,242"}, timeout=TIMEOUT
    )

    assert {d["received"] for d in details(response)} == {"zq-4242", "$4,242"}
    logged = "\n".join(customer.log_lines())
    assert "zq-4242" not in logged
    assert "4,242" not in logged


# --- a batch too large for one request -----------------------------------------------------


def test_a_batch_over_max_instances_is_told_its_size_and_where_larger_ones_go(
    start_function: StartFunction, published: str
) -> None:
    server = start_function(TARGETS["market_trend"], MODEL_STORE=published, MAX_INSTANCES="3")
    row = {"sales": 9000, "population": 300, "gdp": 13000}
    larger = (
        "score larger batches as a CSV file uploaded to incoming/market_trend/ in the data "
        "bucket, or from BigQuery"
    )
    csv_body = "sales,population,gdp\r\n" + "9000,300,13000\r\n" * 5

    answers = {
        "json": requests.post(server.url, json={"instances": [row] * 5}, timeout=TIMEOUT),
        "csv": requests.post(
            server.url, data=csv_body, headers={"Content-Type": "text/csv"}, timeout=TIMEOUT
        ),
        "v1": requests.post(
            f"{server.url}/v1/models/market_trend:predict",
            json={"instances": [list(row.values())] * 5},
            timeout=TIMEOUT,
        ),
        "bigquery": requests.post(
            f"{server.url}/bigquery", json={"calls": [list(row.values())] * 5}, timeout=TIMEOUT
        ),
    }

    said = {what: response.json() for what, response in answers.items()}
    assert [answers[what].status_code for what in said] == [413, 413, 413, 400]
    limit = "at most 3 instances are accepted per request"
    assert said["json"]["error"]["message"] == f"{limit}; this one has 5; {larger}"
    assert said["csv"]["error"]["message"] == f"{limit}; {larger}"  # not read past the limit
    assert said["v1"] == {"error": f"{limit}; this one has 5; {larger}"}
    assert said["bigquery"] == {
        "errorMessage": "at most 3 calls are accepted per request; this batch has 5; "
        "lower max_batching_rows in CREATE FUNCTION"
    }


# --- a 404 that helps ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["customer_needs", "market_trend"])
def test_a_wrong_path_lists_the_model_and_every_path_served_and_each_answers(
    running: dict[str, FunctionServer], name: str
) -> None:
    server, function = running[name], TARGETS[name]

    response = requests.get(f"{server.url}/predict", timeout=TIMEOUT)

    assert response.status_code == 404
    message = response.json()["error"]["message"]
    lead = f"no such path: /predict; {function} serves the model {name} at "
    assert message.startswith(lead)
    assert message.endswith(f" (each also under /{function})")
    listed = message.removeprefix(lead).partition(" (each")[0].split(", ")
    assert {"/", "/bigquery", f"/v1/models/{name}:predict", f"/v2/models/{name}/infer"} <= set(
        listed
    )
    for path in listed:
        for url in (server.url + path, f"{server.url}/{function}{path}"):
            answered = requests.options(url, timeout=TIMEOUT)
            assert answered.status_code == 204, (url, answered.text)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/{other}:predict",
        "/v2/models/{other}/infer",
        "/v2/models/{other}/ready",
        "/{other_function}/v1/models/{other}",
    ],
)
@pytest.mark.parametrize("name", ["customer_needs", "market_trend"])
def test_asking_a_function_for_the_other_model_names_the_function_that_serves_it(
    running: dict[str, FunctionServer], name: str, path: str
) -> None:
    other = next(model for model in TARGETS if model != name)
    path = path.format(other=other, other_function=TARGETS[other])

    response = requests.get(running[name].url + path, timeout=TIMEOUT)

    assert response.status_code == 404
    body = response.json()
    message = body["error"] if isinstance(body["error"], str) else body["error"]["message"]
    assert message == (
        f"no such path: {path}; the model {other} is served by the function {TARGETS[other]}, "
        f"and this function, {TARGETS[name]}, serves {name}"
    )
