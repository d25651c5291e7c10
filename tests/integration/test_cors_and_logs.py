"""Browser CORS and the structured request log, against a running function."""

from __future__ import annotations

import json

import requests

from tests.integration.conftest import BUNDLED_VERSION
from tests.integration.support import FunctionServer

ALLOWED = "http://app.test"
ROW = {"age": 47, "gender": "male", "income": 123456.789}


def preflight(server: FunctionServer, origin: str) -> requests.Response:
    return requests.options(
        server.url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
        timeout=30,
    )


def test_preflight_from_allowed_origin(running: dict[str, FunctionServer]):
    response = preflight(running["customer_needs"], ALLOWED)

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    assert "Origin" in response.headers["Vary"]


def test_preflight_from_other_origin_is_refused(running: dict[str, FunctionServer]):
    response = preflight(running["market_trend"], "http://evil.test")

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.json()["error"]["code"] == "origin_not_allowed"


def test_actual_request_carries_cors_headers_only_for_allowed_origin(
    running: dict[str, FunctionServer],
):
    server = running["customer_needs"]

    allowed = requests.post(server.url, json=ROW, headers={"Origin": ALLOWED}, timeout=30)
    other = requests.post(server.url, json=ROW, headers={"Origin": "http://evil.test"}, timeout=30)

    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert "X-Model-Version" in allowed.headers["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_origin_is_allowed_by_default(published: str, start_function):
    server = start_function("predict_customer_needs", MODEL_STORE=published)

    response = preflight(server, ALLOWED)

    assert response.status_code == 403


def test_one_structured_line_per_request_without_feature_values(published: str, start_function):
    server = start_function(
        "predict_customer_needs", MODEL_STORE=published, GOOGLE_CLOUD_PROJECT="demo-project"
    )
    trace = {"X-Cloud-Trace-Context": "0af7651916cd43dd8448eb211c80319c/123;o=1"}
    csv_body = b"age,gender,income,note\n47,male,123456.789,private-note-text\n"

    requests.post(server.url, json={"instances": [ROW, ROW]}, headers=trace, timeout=30)
    requests.post(server.url, data=csv_body, headers={"Content-Type": "text/csv"}, timeout=30)
    requests.post(
        server.url, json={"age": "4242.4242", "gender": "robot-gender-x", "income": 1}, timeout=30
    )

    lines = [json.loads(line) for line in server.log_lines() if line.startswith("{")]
    requests_logged = [line for line in lines if "httpRequest" in line]
    assert [line["httpRequest"]["status"] for line in requests_logged] == [200, 200, 422]
    first = requests_logged[0]
    assert first["severity"] == "INFO"
    assert first["rows"] == 2
    assert first["model_version"] == BUNDLED_VERSION
    assert first["httpRequest"]["latency"].endswith("s")
    assert first["logging.googleapis.com/trace"] == (
        "projects/demo-project/traces/0af7651916cd43dd8448eb211c80319c"
    )
    assert requests_logged[2]["severity"] == "WARNING"
    assert requests_logged[2]["error"] == "invalid_input"
    log = "\n".join(server.log_lines())
    for value in ("123456.789", "private-note-text", "robot-gender-x", "4242.4242"):
        assert value not in log
