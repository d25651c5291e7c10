"""A function starts, and answers small requests, without pandas, numpy or scikit-learn: they
cost a cold start hundreds of milliseconds. Checked in a fresh interpreter, where nothing
else has imported them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.http.support import last_json_line, run_python

HEAVY = ("pandas", "numpy", "sklearn")
SMALL_REQUESTS = """
import json
import sys
from functions_framework import create_app
from starlette.testclient import TestClient

def loaded():
    return sorted({name.partition(".")[0] for name in sys.modules})

client = TestClient(create_app("predict_customer_needs", "main.py"))
row = {"age": 35, "gender": "F", "income": 52000}
small = [
    client.post("/", json={"instances": [row]}),
    client.post(
        "/",
        content=b"id,age,gender,income\\nA-1,35,F,52000\\n",
        headers={"Content-Type": "text/csv"},
    ),
]
after_small = loaded()
explained = client.post("/", json={"instances": [row], "parameters": {"explain": True}})
print(json.dumps({
    "statuses": [answer.status_code for answer in [*small, explained]],
    "after small requests": after_small,
    "after an explanation": loaded(),
}))
"""


@pytest.fixture(scope="module")
def imports() -> dict[str, Any]:
    return dict(last_json_line(run_python(SMALL_REQUESTS)))


def test_the_requests_were_answered(imports: dict[str, Any]) -> None:
    assert imports["statuses"] == [200, 200, 200]


@pytest.mark.parametrize(
    "module",
    [
        "pandas",
        "numpy",
        "sklearn",
    ],
)
def test_one_small_json_and_one_small_csv_request_import_no_heavy_library(
    imports: dict[str, Any], module: str
) -> None:
    assert module not in imports["after small requests"]


def test_the_check_sees_the_libraries_an_explanation_needs(imports: dict[str, Any]) -> None:
    assert {"numpy", "pandas"} <= set(imports["after an explanation"])


def test_an_explanation_is_computed_without_scikit_learn(imports: dict[str, Any]) -> None:
    # Its coalitions go through the serving form, as every prediction does.
    assert "sklearn" not in imports["after an explanation"]
