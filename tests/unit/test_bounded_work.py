"""Inputs built so that careless code would work far longer than their size calls for.

Each runs in a child process under a generous bound: the bound does not measure speed, it
turns a hang (a regular expression backtracking through every earlier cell, or a count that
is quadratic in the number of columns or keys) into a failure.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

NEAR_MISS_NUMBERS = """
from shared.validation._numbers import numeric_cells
from shared.validation._values import NUMBER
from shared.uploads import neutralise

cells = ["1234567890.5"] * 5000 + ["52,000"]
assert numeric_cells(cells) is None
assert numeric_cells(cells[:-1]) is not None
digits = "1" * 100_000
assert NUMBER.fullmatch(digits + "x") is None
assert neutralise("-" + digits + "x") == "'-" + digits + "x"
from shared.codecs import Dialect
near_misses = [digits + "," + digits + "x", "1,5"] * 50
assert Dialect(";").numbers_read(near_misses)[:2] == [digits + "," + digits + "x", "1.5"]
"""

WIDE_HEADER = """
import pytest
from shared.codecs import read_csv
from shared.errors import BadRequest
from shared.schema import CUSTOMER_NEEDS

names = [f"c{i}" for i in range(200_000)]
with pytest.raises(BadRequest, match="names the column age twice"):
    read_csv(",".join([*names, "age", "gender", "income", "Age"]).encode() + b"\\r\\n", 10).rows(
        CUSTOMER_NEEDS
    )
table = read_csv(",".join([*names, "age", "gender", "income"]).encode() + b"\\r\\n", 10)
assert len(table.header) == 200_003
assert list(table.rows(CUSTOMER_NEEDS).columns or {}) == ["age", "gender", "income"]
"""

A_STRAY_KEY_PER_INSTANCE = """
import orjson
from functions_framework import create_app
from starlette.testclient import TestClient

client = TestClient(create_app("predict_customer_needs", "main.py"))
instances = [{"age": 35, "gender": "F", "income": 100, f"k{i}": 1} for i in range(50_000)]
body = orjson.dumps({"instances": instances})
answer = client.post("/", content=body, headers={"Content-Type": "application/json"})
assert answer.status_code == 422
details = answer.json()["error"]["details"]
assert [(d["row"], d["field"]) for d in details[:2]] == [(0, "k0"), (1, "k1")]
assert len(details) == 50_000
"""


@pytest.mark.parametrize(
    "program",
    [NEAR_MISS_NUMBERS, WIDE_HEADER, A_STRAY_KEY_PER_INSTANCE],
    ids=["near-miss numbers", "wide header", "a stray key per instance"],
)
def test_work_stays_proportional_to_the_input(program: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", program], timeout=120, check=False, capture_output=True
    )

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
