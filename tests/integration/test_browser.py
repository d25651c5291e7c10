"""The example web page (examples/web) in headless Chromium, calling functions on another origin.

The page is served from one loopback origin and the functions from others, so every call is a
real cross-origin fetch that the browser checks against the function's CORS answer. The tests
drive the page's controls as a person would and check what it shows, and the data behind each
chart it draws, against what the function answers for the same rows and against the bundled
model computed here. Nothing is asserted on pixels; a screenshot per model is saved for a person.
"""

from __future__ import annotations

import csv
import functools
import http.server
import io
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, sync_playwright

from shared.store import LoadedModel, load_current
from tests import expected as reference
from tests.integration.conftest import (
    BUNDLED,
    MODELS,
    TARGETS,
    bundled_version,
    launcher,
    new_bucket,
    publish_all,
)
from tests.integration.support import REPO, FakeGcs, FunctionServer

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
LEVEL = 0.9  # the interval level the page asks for
OUTSIDE = "outside_training_range"
DASH = " \N{EN DASH} "  # between an interval's bounds, as the page writes them
ROWS = {
    "customer_needs": [
        {"age": 35, "gender": "female", "income": 52000},
        {"age": 61, "gender": "male", "income": 90000.5},
        {"age": 18, "gender": "other", "income": 0},  # an income below any fit on
    ],
    "market_trend": [
        {"sales": 9000, "population": 300.5, "gdp": 13000},
        {"sales": 4000.5, "population": 200, "gdp": 6000},
        {"sales": 9000, "population": 400, "gdp": 13000},  # more people than ever seen
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
def serving(
    gcs: FakeGcs, site: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FunctionServer]]:
    """Both functions on the bundled models, allowing the page's origin; shared by the module."""
    store = publish_all(gcs, new_bucket(gcs))
    with launcher(gcs, tmp_path_factory.mktemp("page-servers")) as start:
        yield {
            name: start(target, MODEL_STORE=store, CORS_ALLOWED_ORIGINS=site)
            for name, target in TARGETS.items()
        }


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
    context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], "the page's script raised"


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


def money(value: float) -> str:
    """A value as the page shows it."""
    return f"{value:,.2f}"


def problem_line(detail: dict[str, Any]) -> str:
    """One of the API's error details as the page lists it."""
    where = [f"{key} {detail[key]}" for key in ("line", "row") if detail.get(key) is not None]
    at = f"{where[0]} ({where[1]})" if len(where) == 2 else "".join(where)
    return ", ".join(part for part in (at, detail.get("field")) if part) + f": {detail['reason']}"


def card_of(server: FunctionServer) -> dict[str, Any]:
    response = requests.get(f"{server.url}/", timeout=30)
    response.raise_for_status()
    return dict(response.json())


def api_predictions(server: FunctionServer, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the function answers for `rows` with an interval and explanations, asked directly."""
    body = {"instances": rows, "parameters": {"interval": LEVEL, "explain": True}}
    response = requests.post(f"{server.url}/", json=body, timeout=30)
    response.raise_for_status()
    return list(response.json()["predictions"])


def open_page(page: Page, site: str, *servers: FunctionServer) -> None:
    query = "&".join(f"api={server.url}/" for server in servers)
    page.goto(f"{site}/index.html?{query}")


def view_of(page: Page, model: str) -> Locator:
    return page.locator(f"section.view[data-model='{model}']")


def answers(view: Locator) -> int:
    return int(view.get_attribute("data-answers") or 0)


def wait_for_answer(page: Page, view: Locator, after: int) -> None:
    """Until the what-if panel has drawn an answer newer than the `after`-th."""
    page.wait_for_function(
        "([view, after]) => view.dataset.whatif === 'done' && Number(view.dataset.answers) > after",
        arg=[view.element_handle(), after],
    )


def chart_data(view: Locator, part: str) -> dict[str, Any]:
    return dict(json.loads(view.locator(f"[data-part={part}]").get_attribute("data-series") or ""))


def control(view: Locator, feature: str) -> Locator:
    return view.locator(f".control[data-feature='{feature}']")


def check_panel(view: Locator, server: FunctionServer, model: str, row: dict[str, Any]) -> None:
    """Everything the what-if panel shows for `row` is what the function and the model say."""
    metadata = bundled(model).metadata
    target = bundled(model).schema.target
    [want] = expected(model, [row])
    [answer] = api_predictions(server, [row])
    band = reference.interval(metadata, row, want, LEVEL)

    shown = view.locator("[data-part=prediction]")
    assert float(shown.get_attribute("data-value") or "nan") == pytest.approx(want, rel=1e-12)
    assert shown.text_content() == money(want)
    interval = view.locator("[data-part=interval]")
    if band is None:
        assert interval.get_attribute("data-lower") == ""
        assert (interval.text_content() or "").startswith("No 90% interval")
    else:
        bounds = [float(interval.get_attribute(f"data-{b}") or "nan") for b in ("lower", "upper")]
        assert bounds == pytest.approx(list(band), rel=1e-9)
        assert interval.text_content() == f"90% interval {money(band[0])}{DASH}{money(band[1])}"
    flagged = reference.outside(metadata, row)
    reliability = view.locator("[data-part=reliability]")
    assert reliability.get_attribute("data-outside") == ";".join(flagged)
    assert ("Outside the training range" in (reliability.text_content() or "")) == bool(flagged)

    sweep = chart_data(view, "sweep")
    feature = sweep["feature"]
    assert {**sweep["fixed"], feature: sweep["current"]["x"]} == row
    assert sweep["current"]["prediction"] == answer[target]
    slider = control(view, feature).locator("input[type=range]")
    low, high = (float(slider.get_attribute(side) or "nan") for side in ("min", "max"))
    xs = [point["x"] for point in sweep["points"]]
    assert xs == sorted(xs)
    # The swept values are rounded to 12 significant digits: the span's ends, to that precision.
    assert (xs[0], xs[-1]) == pytest.approx((min(low, row[feature]), max(high, row[feature])))
    swept_rows = [{**sweep["fixed"], feature: x} for x in xs]
    from_api = api_predictions(server, swept_rows)
    assert [p["prediction"] for p in sweep["points"]] == [p[target] for p in from_api]
    assert [p["prediction"] for p in sweep["points"]] == pytest.approx(
        expected(model, swept_rows), rel=1e-12
    )
    assert [(p["lower"], p["upper"]) for p in sweep["points"]] == [
        (p["interval"]["lower"], p["interval"]["upper"]) for p in from_api
    ]
    for point, swept in zip(sweep["points"], swept_rows, strict=True):
        bounds = reference.interval(metadata, swept, point["prediction"], LEVEL)
        assert (point["lower"], point["upper"]) == (
            (None, None) if bounds is None else pytest.approx(bounds, rel=1e-9)
        )
    assert view.locator("[data-part=sweep] path.line").count() == 1

    bars = chart_data(view, "contributions")
    assert bars["baseValue"] == answer["base_value"]
    assert bars["prediction"] == answer[target]
    assert {bar["feature"]: bar["value"] for bar in bars["bars"]} == answer["contributions"]
    assert bars["baseValue"] + sum(bar["value"] for bar in bars["bars"]) == pytest.approx(
        want, rel=1e-9
    )
    starts = [bar["start"] for bar in bars["bars"]]
    assert starts == [bars["baseValue"], *(bar["end"] for bar in bars["bars"][:-1])]
    drawn = view.locator("[data-part=contributions] rect.bar")
    assert drawn.evaluate_all("rects => rects.map(r => [r.dataset.feature, +r.dataset.value])") == [
        [bar["feature"], bar["value"]] for bar in bars["bars"]
    ]


def check_facts(view: Locator, model: str) -> None:
    """The side panel says which version answers, what it was trained on and how good it is."""
    metadata = bundled(model).metadata
    facts = view.locator("[data-part=facts]")
    assert facts.locator("[data-fact=version]").text_content() == bundled_version(model)
    trained_on = facts.locator("[data-fact=trained-on]").text_content() or ""
    assert metadata["use"]["data"] in trained_on
    assert f"{metadata['training']['rows_fit']:,} rows fit" in trained_on
    chosen = metadata["metrics"]["held_out"]["chosen"]
    for metric, value in chosen.items():
        cell = facts.locator(f"td[data-model=chosen][data-metric={metric}]").first
        assert float(cell.get_attribute("data-value") or "nan") == value
        assert cell.text_content() == (f"{value:.3f}" if metric == "r2" else money(value))


def save_screenshot(page: Page, tmp_path: Path, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header is drawn where the page is scrolled
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=shot, full_page=True)
    stable = Path(f"/tmp/marketcast-web-{name}.png")
    shutil.copyfile(shot, stable)
    print(f"screenshot: {shot} (and {stable})")


@pytest.mark.parametrize("model", MODELS)
def test_what_if_panel_follows_the_controls(
    page: Page, site: str, serving: dict[str, FunctionServer], model: str, tmp_path: Path
):
    server = serving[model]
    card = card_of(server)
    numbers = [f for f in card["features"] if f["type"] == "number"]
    categories = [f for f in card["features"] if f["type"] == "category"]
    row = dict(card["example_request"]["instances"][0])

    open_page(page, site, *serving.values())
    page.locator("#tabs .tab", has_text=model).click()
    view = view_of(page, model)
    wait_for_answer(page, view, 0)

    assert page.locator("#tabs .tab").all_text_contents() == list(MODELS)
    assert view.is_visible()
    for feature in numbers:
        slider = control(view, feature["name"]).locator("input[type=range]")
        seen = card["training_ranges"][feature["name"]]
        low, high = (float(slider.get_attribute(side) or "nan") for side in ("min", "max"))
        assert feature["minimum"] <= low <= seen["min"] < seen["max"] <= high <= feature["maximum"]
    for feature in categories:
        options = control(view, feature["name"]).locator("option")
        assert options.evaluate_all("os => os.map(o => o.value)") == feature["categories"]
    check_panel(view, server, model, row)
    check_facts(view, model)

    # Move a slider to the middle of its span.
    slid = numbers[0]["name"]
    slider = control(view, slid).locator("input[type=range]")
    low, high, step = (float(slider.get_attribute(a) or "nan") for a in ("min", "max", "step"))
    row[slid] = low + step * round((high - low) / 2 / step)
    before = answers(view)
    slider.fill(f"{row[slid]:g}")
    wait_for_answer(page, view, before)
    assert float(control(view, slid).locator("input.value").input_value()) == row[slid]
    check_panel(view, server, model, row)

    # Type a value the model never saw: the row is flagged and its interval withheld.
    typed = numbers[-1]["name"]
    row[typed] = round(card["training_ranges"][typed]["max"] * 1.5, 1)
    before = answers(view)
    control(view, typed).locator("input.value").fill(f"{row[typed]:g}")
    wait_for_answer(page, view, before)
    assert view.locator("[data-part=reliability]").get_attribute("data-outside") == typed
    check_panel(view, server, model, row)

    for feature in categories:
        row[feature["name"]] = feature["categories"][-1]
        before = answers(view)
        control(view, feature["name"]).locator("select").select_option(row[feature["name"]])
        wait_for_answer(page, view, before)
        check_panel(view, server, model, row)

    # Sweep another feature: the chart's rows now step that one.
    before = answers(view)
    view.locator("[data-part=sweep-feature]").select_option(typed)
    wait_for_answer(page, view, before)
    assert chart_data(view, "sweep")["feature"] == typed
    check_panel(view, server, model, row)
    assert page.locator("section.view:visible").count() == 1

    save_screenshot(page, tmp_path, model)


def test_a_moving_slider_sends_one_request_once_it_rests(
    page: Page, site: str, serving: dict[str, FunctionServer]
):
    server = serving["customer_needs"]
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    open_page(page, site, server)
    view = view_of(page, "customer_needs")
    wait_for_answer(page, view, 0)
    posts.clear()

    before = answers(view)
    # Forty steps of a drag within one task: faster than any debounce, however slow the machine.
    control(view, "age").locator("input[type=range]").evaluate(
        """slider => {
            for (let age = 20; age < 60; age++) {
                slider.value = age;
                slider.dispatchEvent(new Event("input", { bubbles: true }));
            }
        }"""
    )
    wait_for_answer(page, view, before)

    assert posts == [f"{server.url}/"]
    assert chart_data(view, "sweep")["current"]["x"] == 59
    assert answers(view) == before + 1


def test_a_typed_value_the_function_refuses_is_named_until_it_is_fixed(
    page: Page, site: str, serving: dict[str, FunctionServer]
):
    server = serving["customer_needs"]
    row = dict(card_of(server)["example_request"]["instances"][0])
    open_page(page, site, server)
    view = view_of(page, "customer_needs")
    wait_for_answer(page, view, 0)
    shown = view.locator("[data-part=prediction]").text_content()

    control(view, "age").locator("input.value").fill("150")
    page.wait_for_function("view => view.dataset.whatif === 'failed'", arg=view.element_handle())

    body = {"instances": [{**row, "age": 150}]}
    refused = requests.post(f"{server.url}/", json=body, timeout=30).json()["error"]
    error = view.locator("[data-part=whatif-error] p").all_text_contents()
    assert error == [f"age: {d['reason']}" for d in refused["details"]]
    assert view.locator("[data-part=prediction]").text_content() == shown  # the last answer stays
    assert "stale" in (view.get_attribute("class") or "")

    before = answers(view)
    control(view, "age").locator("input.value").fill("50")
    wait_for_answer(page, view, before)
    assert view.locator("[data-part=whatif-error]").text_content() == ""
    check_panel(view, server, "customer_needs", {**row, "age": 50})


def drop_file(page: Page, zone: Locator, path: Path) -> None:
    """Drop a file on `zone` as a person dragging it from their desktop would."""
    transfer = page.evaluate_handle(
        """([name, bytes]) => {
            const transfer = new DataTransfer();
            transfer.items.add(new File([new Uint8Array(bytes)], name, { type: "text/csv" }));
            return transfer;
        }""",
        [path.name, list(path.read_bytes())],
    )
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    zone.dispatch_event("drop", {"dataTransfer": transfer})


def spreadsheet_file(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    """A CSV as a spreadsheet saves it: a UTF-8 byte order mark and CRLF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    return path


def table(view: Locator) -> tuple[list[str], list[list[str]]]:
    header = view.locator("[data-part=results] thead th").all_text_contents()
    rows = [
        row.locator("td").all_text_contents()
        for row in view.locator("[data-part=results] tbody tr").all()
    ]
    return header, rows


def file_state(page: Page, view: Locator, state: str) -> None:
    page.wait_for_function(
        "([view, state]) => view.dataset.file === state", arg=[view.element_handle(), state]
    )


@pytest.mark.parametrize("model", MODELS)
def test_a_dropped_file_is_scored_shown_and_offered_for_download(
    page: Page, site: str, serving: dict[str, FunctionServer], model: str, tmp_path: Path
):
    server = serving[model]
    rows, target = ROWS[model], bundled(model).schema.target
    features = list(bundled(model).schema.feature_names)
    metadata = bundled(model).metadata
    good = spreadsheet_file(
        tmp_path / "campaign.csv",
        ["customer_ref", *features],
        [[f"ref-{i}", *(row[f] for f in features)] for i, row in enumerate(rows)],
    )
    want = expected(model, rows)
    bands = [reference.interval(metadata, row, v, LEVEL) for row, v in zip(rows, want, strict=True)]

    open_page(page, site, server)
    view = view_of(page, model)
    wait_for_answer(page, view, 0)
    drop_file(page, view.locator("[data-part=dropzone]"), good)
    file_state(page, view, "done")

    header, shown = table(view)
    bounds = [f"{target}_lower", f"{target}_upper"]
    assert header == ["customer_ref", *features, target, *bounds, OUTSIDE]
    assert [line[0] for line in shown] == [f"ref-{i}" for i in range(len(rows))]
    cells = view.locator("[data-part=results] td.prediction")
    values = [float(v) for v in cells.evaluate_all("cs => cs.map(c => c.dataset.value)")]
    assert values == pytest.approx(want, rel=1e-12)
    assert cells.all_text_contents() == [money(v) for v in want]
    assert [line[-3:-1] for line in shown] == [
        ["\N{EM DASH}"] * 2 if band is None else [money(band[0]), money(band[1])] for band in bands
    ]
    assert [line[-1] for line in shown] == [
        ", ".join(reference.outside(metadata, row)) for row in rows
    ]
    status = view.locator("[data-part=file-status]").text_content() or ""
    assert status.startswith(f"{len(rows)} rows of campaign.csv scored by {model} ")
    assert "1 outside the training range" in status
    with page.expect_download() as download:
        view.locator("[data-part=download]").click()
    save_screenshot(page, tmp_path, f"{model}-file")
    scored = Path(download.value.path()).read_bytes()
    direct = requests.post(
        f"{server.url}/?interval={LEVEL}",
        data=good.read_bytes(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    assert scored == direct.content
    assert download.value.suggested_filename == "campaign-scored.csv"

    # A bad file, picked with the file picker, replaces the table with the rows at fault.
    bad_rows = [rows[0], {**rows[0], features[0]: -5}]
    bad = spreadsheet_file(
        tmp_path / "typo.csv", features, [[row[f] for f in features] for row in bad_rows]
    )
    view.locator("[data-part=file-input]").set_input_files(bad)
    file_state(page, view, "failed")

    refused = requests.post(
        f"{server.url}/?interval={LEVEL}",
        data=bad.read_bytes(),
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )
    problem = refused.json()["error"]
    assert refused.status_code == 422
    assert [(d["row"], d["field"]) for d in problem["details"]] == [(1, features[0])]
    error = view.locator("[data-part=file-error]")
    assert error.locator(".error-title").text_content() == f"422 · {problem['message']}"
    assert error.locator("li").all_text_contents() == [problem_line(d) for d in problem["details"]]
    assert view.locator("[data-part=results] tr").count() == 0
    assert view.locator("[data-part=download]").is_hidden()

    # And the next good file replaces the error.
    drop_file(page, view.locator("[data-part=dropzone]"), good)
    file_state(page, view, "done")
    assert error.text_content() == ""
    assert table(view)[1] == shown


def test_the_function_urls_can_be_typed_into_the_page(
    page: Page, site: str, serving: dict[str, FunctionServer]
):
    customer, market = serving["customer_needs"], serving["market_trend"]
    open_page(page, site, customer)
    wait_for_answer(page, view_of(page, "customer_needs"), 0)
    assert page.locator("#tabs .tab").all_text_contents() == ["customer_needs"]

    page.locator(".settings-menu summary").click()
    page.fill("#apis", f"{customer.url}/\n{market.url}/")
    page.get_by_role("button", name="Connect").click()
    page.wait_for_url("**/index.html?api=*&api=*")
    for model in MODELS:
        wait_for_answer(page, view_of(page, model), 0)

    assert page.locator("#tabs .tab").all_text_contents() == list(MODELS)
    assert view_of(page, "market_trend").is_hidden()  # the first function's tab is shown
    page.locator("#tabs .tab", has_text="market_trend").click()
    assert view_of(page, "market_trend").is_visible()
    assert view_of(page, "customer_needs").is_hidden()


@pytest.mark.parametrize("model", MODELS)
def test_browser_refuses_when_the_pages_origin_is_not_allowed(
    page: Page, site: str, running: dict[str, FunctionServer], model: str, tmp_path: Path
):
    server = running[model]  # allows http://app.test only
    features = list(bundled(model).schema.feature_names)
    upload = spreadsheet_file(
        tmp_path / "rows.csv", features, [[row[f] for f in features] for row in ROWS[model]]
    )
    console: list[str] = []
    page.on("console", lambda message: console.append(_text(message)))

    open_page(page, site, server)
    view = page.locator(f"section.view[data-api='{server.url}/']")
    load_error = view.locator("[data-part=load-error]")
    load_error.get_by_text("the CORS check failed").wait_for()
    view.locator("[data-part=file-input]").set_input_files(upload)
    file_state(page, view, "failed")

    error = view.locator("[data-part=file-error]").text_content() or ""
    for message in (load_error.text_content() or "", error):
        assert message.startswith(f"The browser refused the request to {server.url}/")
        assert f"this page's origin ({site}) is not in its CORS_ALLOWED_ORIGINS" in message
    assert view.get_attribute("data-state") == "failed"
    assert view.locator("[data-part=results] td").count() == 0
    blocked = [line for line in console if "blocked by CORS policy" in line]
    assert any(f"from origin '{site}'" in line for line in blocked), console
    requests_seen = [_request_line(line) for line in server.log_lines() if line.startswith("{")]
    assert ("OPTIONS", 403) in requests_seen  # the file's preflight, refused
    assert "POST" not in {method for method, _ in requests_seen}  # so it never sent the POST


def _text(message: ConsoleMessage) -> str:
    return message.text


def _request_line(line: str) -> tuple[str, int]:
    http_request = json.loads(line).get("httpRequest", {})
    return http_request.get("requestMethod", ""), http_request.get("status", 0)
