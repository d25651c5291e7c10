"""Requests the functions refuse: every status but 413 and 422, each in the body shape its
protocol speaks, and never a stack trace or a path of ours in a body."""

from __future__ import annotations

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.http.support import MODELS, REPO, TARGETS

ROOT = ("GET", "HEAD", "POST", "OPTIONS")
READ = ("GET", "HEAD", "OPTIONS")
WRITE = ("POST", "OPTIONS")


def native_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].partition(";")[0] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    return str(error["message"])


def kserve_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].partition(";")[0] == "application/json"
    assert list(response.json()) == ["error"]
    return str(response.json()["error"])


# --- 400 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": [', "body is not valid JSON: unexpected end of data at line 1 column 16"),
        (b"", "body is not valid JSON: Input is a zero-length, empty document at line 1 column 1"),
        (b'{"age": NaN, "gender": "f", "income": 1}', "body is not valid JSON: unexpected"),
        (b'{"age": Infinity, "gender": "f", "income": 1}', "body is not valid JSON: unexpected"),
        (b"\xff{}", "body is not valid JSON: str is not valid UTF-8"),
        (b"[1, 2]", 'body must be a JSON object: {"instances": [...]} or one instance'),
        (b'{"instances": {}}', '"instances" must be a list of objects'),
        (b'{"instances": [], "parameters": []}', '"parameters" must be an object'),
        (b'{"instances": [], "options": {}}', "unexpected top-level keys: options"),
    ],
)
def test_a_body_that_is_not_the_json_we_read_is_400(
    customer: TestClient, body: bytes, message: str
) -> None:
    response = customer.post("/", content=body, headers={"Content-Type": "application/json"})

    assert native_error(response, 400, "bad_request").startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"age,gender,income\r\n35,f\r\n", "CSV row 0 (line 2) has 2 fields; the header has 3"),
        (
            b"age,gender,income\n35,f,1\n\n37,f\n",
            "CSV row 1 (line 4) has 2 fields; the header has 3",
        ),
        (b"age,gender,income\n35,f,1,extra\n", "CSV row 0 (line 2) has 4 fields; the header has 3"),
        (b'age,gender,income\n"35"x,f,1\n', "the CSV cannot be read at line 2: ',' expected after"),
        (b'age,gender,income\n"35,f,1\n', "the CSV cannot be read at line 2: unexpected end of"),
        (b"\xff\xfeage,gender,income\n", "the CSV is not UTF-8 text (invalid bytes near line 1)"),
        (b"", "the CSV is empty; expected a header row"),
        (b"\n\n", "the CSV is empty; expected a header row"),
        (b"age,gender,Age\n35,f,1\n", "the header names the column age twice (columns 1 and 3)"),
        (b"age,gender;income\n35,f;1\n", "the header line holds commas and semicolons, and the"),
        (b"age|gender|income\n35|f|1\n", "the header is separated by pipes, which are not read"),
        (b"age,gender,income,Purchase_Amount\n", "the header already has a column named purchase"),
    ],
)
def test_ragged_or_unreadable_csv_is_400_naming_the_data_row(
    customer: TestClient, body: bytes, message: str
) -> None:
    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert native_error(response, 400, "bad_request").startswith(message)


@pytest.mark.parametrize(
    "path", ["/v1/models/market_trend:predict", "/v2/models/market_trend/infer"]
)
def test_the_protocols_say_400_in_their_own_shape(market: TestClient, path: str) -> None:
    response = market.post(path, content=b"{oops", headers={"Content-Type": "application/json"})

    assert kserve_error(response, 400).startswith("body is not valid JSON")


# --- 404 -----------------------------------------------------------------------------------


def paths_served(name: str) -> list[str]:
    """Every path a function answers, as the README lists them."""
    v1, v2 = f"/v1/models/{name}", f"/v2/models/{name}"
    return [
        *("/", "/bigquery"),
        *(v1, f"{v1}:predict", "/v1/models"),
        *("/v2", "/v2/health/live", "/v2/health/ready"),
        *(v2, f"{v2}/ready", f"{v2}/infer"),
    ]


def served_here(name: str) -> str:
    function = TARGETS[name]
    paths = ", ".join(paths_served(name))
    return f"{function} serves the model {name} at {paths} (each also under /{function})"


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "path", ["/nope", "/predict", "/{function}x", "/{function}/nope", "/index.html"]
)
def test_an_unknown_path_is_404_naming_the_model_and_every_path_served(
    clients: dict[str, TestClient], name: str, path: str
) -> None:
    path = path.format(function=TARGETS[name])

    response = clients[name].get(path)

    assert native_error(response, 404, "not_found") == f"no such path: {path}; {served_here(name)}"


@pytest.mark.parametrize("name", MODELS)
def test_every_path_a_404_lists_is_answered(clients: dict[str, TestClient], name: str) -> None:
    message = native_error(clients[name].get("/nope"), 404, "not_found")
    listed = message.partition(" at ")[2].partition(" (each")[0].split(", ")
    prefix = f"/{TARGETS[name]}"

    answers = {path: clients[name].options(path).status_code for path in listed}
    under_prefix = {path: clients[name].options(prefix + path).status_code for path in listed}

    assert listed == paths_served(name)
    assert set(answers.values()) == set(under_prefix.values()) == {204}, (answers, under_prefix)


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    ("path", "kserve"),
    [
        ("/v1/models/{other}", True),
        ("/v1/models/{other}:predict", True),
        ("/v2/models/{other}", True),
        ("/v2/models/{other}/infer", True),
        ("/v2/models/{other}/versions/1/infer", True),
        ("/{other_function}", False),
        ("/{other_function}/v1/models/{other}:predict", False),
    ],
)
def test_asking_for_the_other_model_says_which_function_serves_it(
    clients: dict[str, TestClient], name: str, path: str, kserve: bool
) -> None:
    other = next(n for n in MODELS if n != name)
    path = path.format(other=other, other_function=TARGETS[other])

    response = clients[name].post(path, json={"instances": []})

    message = kserve_error(response, 404) if kserve else native_error(response, 404, "not_found")
    assert message == (
        f"no such path: {path}; the model {other} is served by the function {TARGETS[other]}, "
        f"and this function, {TARGETS[name]}, serves {name}"
    )


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/customer_needs:explain",
        "/v1/models/customers:predict",
        "/v2/models",
        "/v2/health",
        "/v2/models/customer_needs/infer/x",
        "/v2/models/customer_needs/versions",
        "/predict_customer_needs/v2/repository/index",
    ],
)
def test_an_unknown_protocol_path_is_404_in_the_protocols_shape(
    customer: TestClient, path: str
) -> None:
    response = customer.get(path)

    assert kserve_error(response, 404) == f"no such path: {path}; {served_here('customer_needs')}"


def test_a_long_unknown_path_is_not_echoed_in_full(customer: TestClient) -> None:
    path = "/" + "x" * 5000

    response = customer.get(path)

    message = native_error(response, 404, "not_found")
    assert message == f"no such path: {path[:200]}; {served_here('customer_needs')}"


@pytest.mark.parametrize("name", MODELS)
def test_what_the_framework_answers_itself_is_plain_and_echoes_nothing(
    clients: dict[str, TestClient], name: str
) -> None:
    # functions-framework routes these before the function is called; they are its own.
    client, secret = clients[name], {"Authorization": "Bearer s3cret", "X-Note": "n0te"}
    answers = [
        client.get("/favicon.ico", headers=secret),
        client.get("/robots.txt", headers=secret),
        client.request("TRACE", "/", headers=secret),
    ]

    assert [(a.status_code, a.text) for a in answers] == [
        (404, "Not Found"),
        (404, "Not Found"),
        (405, "Method Not Allowed"),
    ]


# --- 405 and OPTIONS -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/", ROOT),
        ("/{function}", ROOT),
        ("/v1/models/{model}", READ),
        ("/v1/models/{model}:predict", WRITE),
        ("/v2", READ),
        ("/v2/health/live", READ),
        ("/v2/health/ready", READ),
        ("/v2/models/{model}", READ),
        ("/v2/models/{model}/ready", READ),
        ("/v2/models/{model}/infer", WRITE),
        ("/v2/models/{model}/versions/{version}/infer", WRITE),
        ("/{function}/v2/models/{model}/versions/{version}", READ),
    ],
)
@pytest.mark.parametrize("name", MODELS)
def test_a_method_a_path_does_not_take_is_405_with_allow(
    clients: dict[str, TestClient], name: str, path: str, allowed: tuple[str, ...]
) -> None:
    client = clients[name]
    live = client.get("/").json()["version"]
    path = path.format(function=TARGETS[name], model=name, version=live)

    for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
        if method in allowed:
            continue
        response = client.request(method, path, json={})

        assert response.status_code == 405, (method, path)
        assert response.headers["Allow"] == ", ".join(allowed)
        message = f"{method} is not allowed here"
        if method != "HEAD":
            body = response.json()
            found = body["error"] if "/v" in path else body["error"]["message"]
            assert found == message


@pytest.mark.parametrize(
    ("path", "allowed"), [("/", ROOT), ("/v1/models/customer_needs:predict", WRITE)]
)
def test_options_without_an_origin_lists_the_methods(
    customer: TestClient, path: str, allowed: tuple[str, ...]
) -> None:
    response = customer.options(path)

    assert response.status_code == 204
    assert response.headers["Allow"] == ", ".join(allowed)
    assert "Access-Control-Allow-Origin" not in response.headers


def test_no_origin_may_call_from_a_browser_by_default(market: TestClient) -> None:
    preflight = market.options(
        "/", headers={"Origin": "http://app.test", "Access-Control-Request-Method": "POST"}
    )
    actual = market.get("/", headers={"Origin": "http://app.test"})

    assert native_error(preflight, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in preflight.headers
    assert actual.status_code == 200
    assert "Access-Control-Allow-Origin" not in actual.headers
    assert "Origin" in actual.headers["Vary"]


# --- 415 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/x-www-form-urlencoded"]
)
def test_a_post_that_is_neither_json_nor_csv_is_415(
    customer: TestClient, content_type: str
) -> None:
    response = customer.post("/", content=b"age=35", headers={"Content-Type": content_type})

    assert native_error(response, 415, "unsupported_media_type") == (
        f"Content-Type {content_type} is not supported; use application/json or text/csv"
    )


def test_a_post_to_the_root_without_a_content_type_is_415(customer: TestClient) -> None:
    response = customer.post("/", content=b'{"age": 35, "gender": "f", "income": 1}')

    assert native_error(response, 415, "unsupported_media_type") == (
        "set Content-Type: application/json or text/csv"
    )


@pytest.mark.parametrize(
    "path", ["/v1/models/customer_needs:predict", "/v2/models/customer_needs/infer"]
)
@pytest.mark.parametrize("content_type", ["text/plain", "text/csv", "application/xml"])
def test_the_protocols_say_415_in_their_own_shape(
    customer: TestClient, path: str, content_type: str
) -> None:
    response = customer.post(path, content=b"{}", headers={"Content-Type": content_type})

    assert kserve_error(response, 415) == (
        f"Content-Type {content_type} is not supported here; use application/json"
    )


# --- what an error body never holds --------------------------------------------------------


REFUSED = [
    ("POST", "/", b"{oops", "application/json"),
    ("POST", "/", b'{"calls": [[1, "f"]]}', "application/json"),
    ("POST", "/", b'{"calls": 5}', "application/json"),
    ("POST", "/", b"a,b\n1\n", "text/csv"),
    ("POST", "/", b'a\n"x', "text/csv"),
    ("POST", "/", b"\xff", "text/csv"),
    ("POST", "/", b"x", "text/plain"),
    (
        "POST",
        "/",
        b'{"instances": [{"age": "x"}], "parameters": {"interval": 7}}',
        "application/json",
    ),
    ("POST", "/v1/models/{model}:predict", b'{"instances": [[1]]}', "application/json"),
    ("POST", "/v2/models/{model}/infer", b'{"inputs": [{"name": 1}]}', "application/json"),
    ("POST", "/v2/models/{model}/versions/old/infer", b"{}", "application/json"),
    ("GET", "/v2/models/{model}/infer", b"", "application/json"),
    ("PUT", "/", b"{}", "application/json"),
    ("GET", "/../../etc/passwd", b"", "application/json"),
    ("GET", "/%00", b"", "application/json"),
]


@pytest.mark.parametrize(("method", "path", "body", "content_type"), REFUSED)
@pytest.mark.parametrize("name", MODELS)
def test_an_error_body_holds_no_trace_and_no_path_of_ours(
    clients: dict[str, TestClient],
    name: str,
    method: str,
    path: str,
    body: bytes,
    content_type: str,
) -> None:
    response = clients[name].request(
        method, path.format(model=name), content=body, headers={"Content-Type": content_type}
    )

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].partition(";")[0] == "application/json"
    text = response.text
    for leak in ("Traceback", 'File "', ".py", str(REPO), "site-packages", "Error:"):
        assert leak not in text
