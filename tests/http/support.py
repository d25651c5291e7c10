"""What the in-process tests share: the entry points' source, the bundled models, and the
answers those models give when asked directly, without the functions in between.

Every expected value here comes from the model itself (`model.pipeline.predict` on a pandas
frame, raised to the target's minimum; the calibration scores, interval scale, training ranges
and explanation background in its metadata, read by the independent reference in
tests/expected.py), never from the code that serves it.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import math
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from shared.schema import NumericFeature
from shared.store import LoadedModel, LocalFolder, load_current
from tests import expected

REPO = Path(__file__).resolve().parents[2]
MAIN = str(REPO / "main.py")
BUNDLED = LocalFolder(REPO / "models")
# For each model: the function that serves it (its functions-framework target), and the name
# its prediction comes under.
TARGETS = {"customer_needs": "predict_customer_needs", "market_trend": "predict_market_trend"}
# Valid rows in canonical form, the ones several protocols send.
ROWS = {
    "customer_needs": [
        {"age": 35, "gender": "female", "income": 52000},
        {"age": 61, "gender": "male", "income": 90000.5},
        {"age": 18, "gender": "other", "income": 0},
    ],
    "market_trend": [
        {"sales": 9000, "population": 300.5, "gdp": 13000},
        {"sales": 4000.5, "population": 200, "gdp": 6000},
    ],
}
PREDICTION = {"customer_needs": "purchase_amount", "market_trend": "future_sales"}
# Valid for the schema (age 18-100, income 0-10,000,000) but far beyond what the model was fit
# on: every protocol flags these features, and `strict` refuses the row.
FAR_OUT = {"age": 95, "gender": "female", "income": 5_000_000}
MODELS = tuple(TARGETS)
RTOL = 1e-9

Row = Mapping[str, Any]


@functools.cache
def bundled(name: str) -> LoadedModel:
    """The bundled model `name`, loaded once per test process (it is never changed)."""
    return load_current(BUNDLED, name)


def version(name: str) -> str:
    return bundled(name).version


def features(name: str) -> list[str]:
    return list(bundled(name).schema.feature_names)


def frame(name: str, rows: Sequence[Row]) -> pd.DataFrame:
    """Canonical rows (numbers, categories as the schema spells them) as the pipeline takes them."""
    schema = bundled(name).schema
    names = list(schema.feature_names)
    table = pd.DataFrame([[row[n] for n in names] for row in rows], columns=names)
    for feature in schema.features:
        if isinstance(feature, NumericFeature):
            table[feature.name] = table[feature.name].astype(float)
    return table


def predicted(name: str, rows: Sequence[Row]) -> list[float]:
    """What the model's own pipeline predicts for canonical `rows`, raised to the target's
    minimum (an amount is never negative)."""
    metadata = bundled(name).metadata
    values = bundled(name).pipeline.predict(frame(name, rows))
    return [expected.in_domain(metadata, float(value)) for value in values]


def bounds(name: str, rows: Sequence[Row], level: float) -> list[tuple[float, float] | None]:
    """Each canonical row's interval at `level` around its predicted value, by the normalised
    split-conformal definition: None where it is withheld (the row is outside the training
    range)."""
    return expected.intervals(bundled(name).metadata, rows, predicted(name, rows), level)


def outside(name: str, row: Row) -> list[str]:
    """The features of a canonical row outside the training range, in schema order."""
    return expected.outside(bundled(name).metadata, row)


def strict_reason(name: str, feature: str) -> str:
    """Why `strict` refuses a value of `feature`: what the fit rows held."""
    return expected.strict_reason(bundled(name).metadata, feature)


def shapley(name: str, row: Row) -> tuple[float, dict[str, float]]:
    """(base value, contribution of each feature) for one canonical row, by the definition:
    a coalition's value is the mean prediction over the background with its features taken
    from the row; a feature's contribution is its weighted mean marginal value."""
    model, names = bundled(name), features(name)
    background = pd.DataFrame(model.metadata["explanations"]["background"])[names]

    @functools.cache
    def value(coalition: frozenset[str]) -> float:
        table = background.copy()
        for feature in coalition:
            table[feature] = row[feature]
        return float(model.pipeline.predict(table).mean())

    k = len(names)
    contributions = {}
    for feature in names:
        others = [n for n in names if n != feature]
        contributions[feature] = sum(
            math.factorial(size)
            * math.factorial(k - size - 1)
            / math.factorial(k)
            * (value(frozenset((*subset, feature))) - value(frozenset(subset)))
            for size in range(k)
            for subset in itertools.combinations(others, size)
        )
    return value(frozenset()), contributions


def csv_body(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """A CSV body as a spreadsheet writes it (quoted where needed, CRLF line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([[text(cell) for cell in row] for row in rows])
    return out.getvalue().encode()


def text(cell: object) -> str:
    """A cell as CSV text: repr() of a float reads back as the same float."""
    return repr(cell) if isinstance(cell, float) else str(cell)


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def json_body(document: object) -> bytes:
    return orjson.dumps(document)


def run_python(
    program: str, settings: Mapping[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """`program` in a fresh interpreter at the repository root, with this environment and
    `settings` on top of it."""
    return subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO,
        env={**os.environ, **(settings or {})},
        timeout=timeout,
        check=False,
        capture_output=True,
    )


def last_json_line(finished: subprocess.CompletedProcess[bytes]) -> Any:
    """The last stdout line a child program printed (the functions log JSON lines before it)."""
    assert finished.returncode == 0, finished.stderr.decode()[-3000:]
    return orjson.loads(finished.stdout.splitlines()[-1])
