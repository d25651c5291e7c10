"""The example web page (examples/web) in headless Chromium, calling a function on another origin.

The page is served from one loopback origin and the function from another, so every call is a
real cross-origin fetch that the browser checks against the function's CORS answer.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from shared.store import LoadedModel, load_current
from tests import expected as reference
from tests.integration.conftest import BUNDLED, MODELS, TARGETS, StartFunction, bundled_version
from tests.integration.support import REPO, FunctionServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGE_DIR = REPO / "examples" / "web"
OUTSIDE = "outside_training_range"
ROWS = {
    "customer_needs": [
        {"age": 35, "gender": "female", "income": 52000},
        {"age": 61, "gender": "male", "income": 90000.5},
        {"age": 18, "gender": "other", "income": 0},  # an income below any fit on
    ],
    "market_trend": [
        {"sales": 9000, "population": 300.5, "gdp": 13000},
        {"sales": 4000.5, "population": 200, "gdp": 6000},
    ],
}
WAIT_MS = 30_000


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        """No access log on stderr."""


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """examples/web served as static files, from its own loopback origin."""
    handler = functools.partial(_QuietHandler, directory=str(PAGE_DIR))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Debian's chromium is missing at {CHROMIUM}: `make system-tools` installs it "
            "(apt-get install chromium)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


@functools.cache
def bundled(name: str) -> LoadedModel:
    return load_current(BUNDLED, name)


def expected(name: str, rows: list[dict[str, Any]]) -> list[float]:
    """The bundled model's own in-process predictions, raised to the target's minimum."""
    model = bundled(name)
    frame = pd.DataFrame(rows)[list(model.schema.feature_names)].astype(
        {f: float for f in model.schema.feature_names if f != "gender"}
    )
    values = model.pipeline.predict(frame)
    return [reference.in_domain(model.metadata, float(value)) for value in values]


def flags(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """Per row, the features outside the training range, as the page shows them."""
    return [";".join(reference.outside(bundled(name).metadata, row)) for row in rows]


def open_page(page: Page, site: str, server: FunctionServer) -> None:
    page.goto(f"{site}/index.html?api={server.url}/")


def table(page: Page) -> tuple[list[str], list[list[str]]]:
    header = page.locator("#results thead th").all_text_contents()
    rows = [
        row.locator("td").all_text_contents() for row in page.locator("#results tbody tr").all()
    ]
    return header, rows


def shown_predictions(page: Page) -> tuple[list[float], list[str]]:
    """The exact values the page received, and the text it shows for them."""
    cells = page.locator("#results td.prediction")
    values = [float(value) for value in cells.evaluate_all("c => c.map(e => e.dataset.value)")]
    return values, cells.all_text_contents()


@pytest.mark.parametrize("model", MODELS)
def test_page_shows_json_and_csv_predictions_from_a_function_on_another_origin(
    page: Page, site: str, published: str, start_function: StartFunction, model: str
):
    server = start_function(TARGETS[model], MODEL_STORE=published, CORS_ALLOWED_ORIGINS=site)
    rows, target = ROWS[model], bundled(model).schema.target
    features = list(bundled(model).schema.feature_names)
    want = expected(model, rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, ["customer_ref", *features], lineterminator="\n")
    writer.writeheader()
    writer.writerows({"customer_ref": f"ref-{i}", **row} for i, row in enumerate(rows))

    open_page(page, site, server)
    page.get_by_text(f"{model} {bundled_version(model)}: predicts {target}").wait_for()
    page.fill("#json-input", json.dumps(rows))
    page.click("#json-run")
    page.get_by_text(f"{len(rows)} predictions from").wait_for()
    json_status = page.text_content("#status")
    json_values, json_text = shown_predictions(page)
    json_header, json_rows = table(page)
    page.fill("#csv-input", buffer.getvalue())
    page.click("#csv-run")
    page.get_by_text("(CSV)").wait_for()
    csv_values, csv_text = shown_predictions(page)
    csv_header, csv_rows = table(page)

    assert page.text_content("#error") == ""
    assert json_status == f"{len(rows)} predictions from {model} {bundled_version(model)} (JSON)"
    assert json_header == [*features, target, OUTSIDE]
    assert json_values == pytest.approx(want, rel=1e-12)
    assert json_text == [f"{value:.2f}" for value in want]
    assert [row[-1] for row in json_rows] == flags(model, rows)
    assert csv_header == ["customer_ref", *features, target, OUTSIDE]
    assert [row[0] for row in csv_rows] == [f"ref-{i}" for i in range(len(rows))]
    assert csv_values == pytest.approx(want, rel=1e-12)
    assert csv_text == [f"{value:.2f}" for value in want]
    assert [row[-1] for row in csv_rows] == flags(model, rows)


def test_page_shows_the_functions_error_for_bad_rows(
    page: Page, site: str, published: str, start_function: StartFunction
):
    server = start_function(
        TARGETS["customer_needs"], MODEL_STORE=published, CORS_ALLOWED_ORIGINS=site
    )
    rows = [ROWS["customer_needs"][0], {"age": 300, "gender": "robot", "income": 1}]

    open_page(page, site, server)
    page.get_by_text("predicts purchase_amount").wait_for()
    page.fill("#json-input", json.dumps(rows))
    page.click("#json-run")
    page.get_by_text("failed", exact=True).wait_for()

    error = page.text_content("#error") or ""
    assert error.startswith("422 1 of 2 rows are invalid")
    assert "row 1, age: must be between 18 and 100" in error
    assert "row 1, gender: must be one of female, male, other" in error


@pytest.mark.parametrize("model", MODELS)
def test_browser_refuses_when_the_pages_origin_is_not_allowed(
    page: Page, site: str, running: dict[str, FunctionServer], model: str
):
    server = running[model]  # allows http://app.test only
    console: list[str] = []
    page.on("console", lambda message: console.append(_text(message)))

    open_page(page, site, server)
    page.get_by_text("the CORS check failed").wait_for()
    page.fill("#json-input", json.dumps(ROWS[model]))
    page.click("#json-run")
    page.get_by_text("failed", exact=True).wait_for()

    error = page.text_content("#error") or ""
    assert error.startswith(f"The browser refused the request to {server.url}/")
    assert f"this page's origin ({site}) is not in its CORS_ALLOWED_ORIGINS" in error
    assert page.locator("#results td").count() == 0
    blocked = [line for line in console if "blocked by CORS policy" in line]
    assert any(f"from origin '{site}'" in line for line in blocked), console
    requests_seen = [_request_line(line) for line in server.log_lines() if line.startswith("{")]
    assert ("OPTIONS", 403) in requests_seen  # the preflight the browser sent, refused
    assert "POST" not in {method for method, _ in requests_seen}  # so it never sent the POST


def _text(message: ConsoleMessage) -> str:
    return message.text


def _request_line(line: str) -> tuple[str, int]:
    http_request = json.loads(line).get("httpRequest", {})
    return http_request.get("requestMethod", ""), http_request.get("status", 0)
