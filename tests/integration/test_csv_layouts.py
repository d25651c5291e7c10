"""The same customers as spreadsheet users save or paste them: European Excel's semicolons with a
byte order mark, CRLF and decimal commas, a tab-separated paste, headers capitalised or padded
with spaces. Each file is posted to a real predict_customer_needs server and uploaded to the
storage emulator for a real score_upload server: every layout gets the very predictions of the
plain comma-separated file (which are the model's own), in the layout it came in; and every
file the layout refuses gets the same message on both paths, a faulty row the same line.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

import orjson
import pandas as pd
import pytest
import requests

from shared.schema import MODELS, CategoricalFeature
from tests.integration.conftest import launcher, new_bucket, publish_all
from tests.integration.support import REPO, FakeGcs, FunctionServer
from tests.integration.test_score_upload import (
    bundled,
    outputs,
    predicted,
    scorer_env,
    upload_and_deliver,
)

BOM = "\ufeff"
TARGET, OUTSIDE = "purchase_amount", "outside_training_range"
FEATURES = ("age", "gender", "income")
# Customers as typed: decimals in both numeric features, genders spelled as people do, one far
# beyond the training range (two features flagged, joined by ";" in one cell).
CUSTOMERS = [
    ("A-1", "35", "F", "52000.5"),
    ("B-2", "61.5", "male", "90000"),
    ("C-3", "18", "Other", "0"),
    ("D-4", "44.25", "female", "123456.75"),
    ("E-5", "95", "f", "5000000"),
]
# Names a spreadsheet quotes when it saves them: a separator, a quote, a line break.
AWKWARD_NAMES = ["Müller; Anna", 'Ben "Jr."', "Chloé\nsecond line", "Dan, Esq.", "Eve"]


@dataclass(frozen=True)
class Layout:
    """How one file is written: its separator, its decimal mark, its header and line ends."""

    separator: str = ","
    header: tuple[str, ...] = ("customer", *FEATURES)
    line_end: str = "\n"
    bom: bool = False
    decimal_comma: bool = False
    awkward_names: bool = False
    final_line_end: bool = True

    def rows(self) -> list[list[str]]:
        rows = []
        for at, (customer, age, gender, income) in enumerate(CUSTOMERS):
            numbers = [self.number(age), self.number(income)]
            name = AWKWARD_NAMES[at] if self.awkward_names else customer
            rows.append([name, numbers[0], gender, numbers[1]])
        return rows

    def number(self, text: str) -> str:
        return text.replace(".", ",") if self.decimal_comma else text

    def file(self) -> bytes:
        """The file as the program that saves this layout writes it."""
        out = io.StringIO()
        writer = csv.writer(out, delimiter=self.separator, lineterminator=self.line_end)
        writer.writerows([list(self.header), *self.rows()])
        text = out.getvalue() if self.final_line_end else out.getvalue()[: -len(self.line_end)]
        return ((BOM if self.bom else "") + text).encode("utf-8")

    def read(self, answer: bytes) -> list[list[str]]:
        """An answer or output file, read in this layout."""
        text = answer.decode("utf-8")
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=self.separator))

    def value(self, cell: str) -> float:
        return float(cell.replace(",", ".") if self.decimal_comma else cell)


PLAIN = Layout()
EXCEL = dict(separator=";", line_end="\r\n", bom=True, decimal_comma=True)
LAYOUTS = {
    "European Excel: BOM, CRLF, semicolons, decimal commas": Layout(
        **EXCEL, header=("Customer", "Age", "Gender", "Income")
    ),
    "European Excel, quoting names that hold a separator, a quote or a line break": Layout(
        **EXCEL, header=("Kunde", "Age", "Gender", "Income"), awkward_names=True
    ),
    "a tab-separated paste without a final line end": Layout(
        separator="\t", header=("Customer", "Age", "Gender", "Income"), final_line_end=False
    ),
    "a tab-separated paste of quoted names": Layout(separator="\t", awkward_names=True),
    "capitalised headers": Layout(header=("Customer", "Age", "Gender", "Income")),
    "headers padded with spaces": Layout(
        header=(" customer ", " age ", "GENDER ", " Income"), line_end="\r\n", bom=True
    ),
}


@pytest.fixture(scope="module")
def servers(gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    store = publish_all(gcs, new_bucket(gcs))
    with launcher(gcs, tmp_path_factory.mktemp("layouts")) as start:
        yield Servers(
            start("predict_customer_needs", MODEL_STORE=store),
            start("score_upload", **scorer_env(store, UPLOAD_CHUNK_ROWS="2")),
        )


@dataclass(frozen=True)
class Servers:
    predict: FunctionServer
    score: FunctionServer


def post_csv(server: FunctionServer, data: bytes) -> requests.Response:
    return requests.post(server.url, data=data, headers={"Content-Type": "text/csv"}, timeout=30)


def scored_files(
    gcs: FakeGcs, bucket: str, server: FunctionServer, data: bytes, name: str = "customers"
) -> dict[str, bytes]:
    """The outputs of `data` uploaded for the customer model and scored, by file name."""
    key = f"incoming/customer_needs/{name}.csv"
    generation = upload_and_deliver(gcs, server, bucket, data, key)
    return outputs(gcs, bucket, key, generation)


def plain_answer(servers: Servers) -> list[list[str]]:
    response = post_csv(servers.predict, PLAIN.file())
    assert response.status_code == 200, response.text
    return PLAIN.read(response.content)


def model_predictions() -> list[float]:
    """The bundled model's own pipeline on the customers, as the schema reads them."""
    schema = MODELS["customer_needs"].schema
    gender = next(f for f in schema.features if isinstance(f, CategoricalFeature)).lookup()
    frame = pd.DataFrame(
        {
            "age": [float(age) for _, age, _, _ in CUSTOMERS],
            "gender": [gender[g.casefold()] for _, _, g, _ in CUSTOMERS],
            "income": [float(income) for _, _, _, income in CUSTOMERS],
        }
    )
    return predicted(bundled("customer_needs"), frame)


# The README's CSV examples: the body printf sends, then the answer, a line per "# " line.
README_EXAMPLE = re.compile(
    r"printf '(?P<body>[^']*)' \|\n"
    r"  curl -s http://127\.0\.0\.1:8080/ -H 'Content-Type: text/csv' --data-binary @-\n"
    r"(?P<answer>(?:# .*\n)+)"
)


def test_the_readmes_csv_examples_are_what_the_function_answers(servers: Servers) -> None:
    examples = list(README_EXAMPLE.finditer((REPO / "README.md").read_text(encoding="utf-8")))
    assert len(examples) >= 2  # commas, and European Excel's semicolons

    for example in examples:
        body = codecs.escape_decode(example["body"].encode())[0]  # printf's escapes
        response = post_csv(servers.predict, body)

        assert response.status_code == 200, response.text
        shown = [line.removeprefix("# ") for line in example["answer"].splitlines()]
        assert response.content.decode().split("\r\n") == [*shown, ""]


def test_the_plain_file_gets_the_models_own_predictions(servers: Servers) -> None:
    answer = plain_answer(servers)

    assert answer[0] == [*PLAIN.header, TARGET, OUTSIDE]
    assert [float(row[4]) for row in answer[1:]] == pytest.approx(model_predictions(), rel=1e-12)
    assert answer[-1][5] == "age;income"  # the last customer lies beyond the training range


@pytest.mark.parametrize("what", list(LAYOUTS))
def test_a_posted_file_gets_the_plain_files_predictions_in_its_own_layout(
    servers: Servers, what: str
) -> None:
    layout = LAYOUTS[what]

    response = post_csv(servers.predict, layout.file())

    assert response.status_code == 200, response.text
    plain = plain_answer(servers)
    answer = layout.read(response.content)
    assert answer[0] == [*layout.header, TARGET, OUTSIDE]
    assert [row[:4] for row in answer[1:]] == layout.rows()  # every cell as sent
    assert [layout.value(row[4]) for row in answer[1:]] == [float(row[4]) for row in plain[1:]]
    assert [row[5] for row in answer[1:]] == [row[5] for row in plain[1:]]
    if layout.decimal_comma:  # the numbers come back as the spreadsheet writes them
        assert all("," in row[4] and "." not in row[4] for row in answer[1:])


@pytest.mark.parametrize("what", list(LAYOUTS))
def test_an_uploaded_file_is_scored_as_the_plain_file_is_in_its_own_layout(
    gcs: FakeGcs, bucket: str, servers: Servers, what: str
) -> None:
    layout = LAYOUTS[what]

    found = scored_files(gcs, bucket, servers.score, layout.file())
    plain = scored_files(gcs, bucket, servers.score, PLAIN.file(), "plain")

    scored, reference = layout.read(found["scored.csv"]), PLAIN.read(plain["scored.csv"])
    assert scored[0] == [*layout.header, TARGET, OUTSIDE]
    assert [row[:4] for row in scored[1:]] == layout.rows()
    assert [layout.value(row[4]) for row in scored[1:]] == [float(r[4]) for r in reference[1:]]
    assert [row[5] for row in scored[1:]] == [row[5] for row in reference[1:]]
    assert layout.read(found["rejected.csv"]) == [["line_number", "reasons", *layout.header]]
    assert [float(row[4]) for row in reference[1:]] == [
        float(row[4]) for row in plain_answer(servers)[1:]
    ]


# Refusals: the same fault, the same words, whichever path the file takes.

REFUSED = {
    "two separators the rows do not settle": (b"age,gender;income\r\n35,F;52000\r\n", 400),
    "pipes": (b"age|gender|income\n35|F|52000\n", 400),
    "headers in another language": (
        BOM.encode() + b"Alter;Geschlecht;Einkommen\r\n35;F;52000,5\r\n",
        422,
    ),
    "a feature named twice": (b"age;gender;income;AGE\r\n35;F;52000;36\r\n", 400),
    "a column scoring adds": (b"age\tgender\tincome\tPurchase Amount\n35\tF\t1\t2\n", 400),
    "a broken quote": (b'age;gender;income\r\n35;"F"x;1\r\n', 400),
    "an unclosed quote": (b'age;gender;income\r\n35;"F;1\r\n36;F;2\r\n', 400),
    "Latin-1, not UTF-8": ("age;gender;income\r\n35;männlich;1\r\n".encode("latin-1"), 400),
    "nothing but a BOM and a blank line": (BOM.encode() + b"\r\n", 400),
}


@pytest.mark.parametrize("what", list(REFUSED))
def test_a_refused_file_is_told_the_same_thing_posted_or_uploaded(
    gcs: FakeGcs, bucket: str, servers: Servers, what: str
) -> None:
    data, status = REFUSED[what]

    response = post_csv(servers.predict, data)
    found = scored_files(gcs, bucket, servers.score, data)

    assert response.status_code == status, response.text
    assert set(found) == {"report.json"}
    report = orjson.loads(found["report.json"])
    assert report["status"] == "failed"
    assert report["problem"]["message"] == response.json()["error"]["message"]


def test_faulty_rows_are_named_by_the_same_line_and_reason_posted_or_uploaded(
    gcs: FakeGcs, bucket: str, servers: Servers
) -> None:
    layout = LAYOUTS["European Excel, quoting names that hold a separator, a quote or a line break"]
    rows = layout.rows()
    rows[3][1] = "300"  # out of range, on the record after a quoted line break
    rows[4][3] = "5.000.000,00"  # thousands separators are not read
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows([layout.header, *rows])
    data = (BOM + out.getvalue()).encode()

    response = post_csv(servers.predict, data)
    found = scored_files(gcs, bucket, servers.score, data)

    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert [(d["row"], d["line"], d["field"]) for d in details] == [(3, 5, "age"), (4, 6, "income")]
    rejected = layout.read(found["rejected.csv"])[1:]
    assert [(int(row[0]), row[1]) for row in rejected] == [
        (d["line"], f"{d['field']}: {d['reason']}") for d in details
    ]


def test_a_short_row_is_named_by_the_same_line_and_reason_posted_or_uploaded(
    gcs: FakeGcs, bucket: str, servers: Servers
) -> None:
    data = b"\xef\xbb\xbfage;gender;income\r\n\r\n35;F;52000,5\r\n40;F\r\n"

    response = post_csv(servers.predict, data)
    found = scored_files(gcs, bucket, servers.score, data)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["message"] == "CSV row 1 (line 4) has 2 fields; the header has 3"
    assert error["details"] == [
        {"row": 1, "field": None, "reason": "has 2 fields; the header has 3", "line": 4}
    ]
    assert Layout(separator=";").read(found["rejected.csv"]) == [
        ["line_number", "reasons", "age", "gender", "income"],
        ["4", "has 2 fields; the header has 3", "40", "F"],
    ]
