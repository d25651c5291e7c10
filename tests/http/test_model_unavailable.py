"""503: no model published in the store. This needs another MODEL_STORE, so the requests are
made by a function in a fresh interpreter, and the answers checked here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.http.support import last_json_line, run_python

REQUESTS = """
import json
from functions_framework import create_app
from starlette.testclient import TestClient

client = TestClient(create_app("predict_customer_needs", "main.py"))
row = {"age": 35, "gender": "f", "income": 52000}
tensors = {"inputs": [{"name": k, "shape": [1], "datatype": "BYTES", "data": [v]}
                      for k, v in row.items()]}
answers = {
    "card": client.get("/"),
    "json": client.post("/", json={"instances": [row]}),
    "csv": client.post(
        "/", content=b"age,gender,income\\n35,f,52000\\n", headers={"Content-Type": "text/csv"}
    ),
    "bigquery": client.post("/", json={"calls": [[35, "f", 52000]]}),
    "v1 status": client.get("/v1/models/customer_needs"),
    "v1 predict": client.post("/v1/models/customer_needs:predict", json={"instances": [row]}),
    "v2 infer": client.post("/v2/models/customer_needs/infer", json=tensors),
    "v2 versioned": client.get("/v2/models/customer_needs/versions/1"),
    "v2 ready": client.get("/v2/health/ready"),
    "v2 model ready": client.get("/v2/models/customer_needs/ready"),
    "v2 live": client.get("/v2/health/live"),
    "v2 server": client.get("/v2"),
}
print(json.dumps({
    name: [a.status_code, a.headers.get("Retry-After"), a.text]
    for name, a in answers.items()
}))
"""
UNAVAILABLE = "no model is published as customer_needs"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty-store")


@pytest.fixture(scope="module")
def answers(store: Path) -> dict[str, list[Any]]:
    return dict(last_json_line(run_python(REQUESTS, {"MODEL_STORE": str(store)})))


def body(answer: list[Any]) -> Any:
    return orjson.loads(answer[2])


@pytest.mark.parametrize("name", ["card", "json", "csv"])
def test_the_root_answers_503_with_retry_after(answers: dict[str, list[Any]], name: str) -> None:
    status, retry_after, _ = answers[name]

    assert (status, retry_after) == (503, "5")
    error = body(answers[name])["error"]
    assert error["code"] == "model_unavailable"
    assert error["message"] == UNAVAILABLE


def test_bigquery_gets_a_503_it_retries_with_its_error_message(
    answers: dict[str, list[Any]],
) -> None:
    status, retry_after, _ = answers["bigquery"]

    assert (status, retry_after) == (503, "5")
    assert list(body(answers["bigquery"])) == ["errorMessage"]
    assert body(answers["bigquery"])["errorMessage"] == UNAVAILABLE


@pytest.mark.parametrize("name", ["v1 status", "v1 predict", "v2 infer", "v2 versioned"])
def test_the_protocols_answer_503_in_their_own_shape(
    answers: dict[str, list[Any]], name: str
) -> None:
    status, retry_after, _ = answers[name]

    assert (status, retry_after) == (503, "5")
    assert list(body(answers[name])) == ["error"]
    assert body(answers[name])["error"] == UNAVAILABLE


@pytest.mark.parametrize("name", ["v2 ready", "v2 model ready"])
def test_readiness_is_false_while_liveness_holds(answers: dict[str, list[Any]], name: str) -> None:
    status, retry_after, _ = answers[name]

    assert (status, retry_after) == (503, "5")
    assert body(answers[name]) == {"ready": False, "error": UNAVAILABLE}
    assert answers["v2 live"][0] == answers["v2 server"][0] == 200
    assert body(answers["v2 live"]) == {"live": True}


def test_no_answer_holds_the_model_stores_location_or_a_key_in_it(
    answers: dict[str, list[Any]], store: Path
) -> None:
    inside = (str(store), "customer_needs/current.json")
    leaked = [name for name, (_, _, text) in answers.items() if any(s in text for s in inside)]

    assert leaked == []
