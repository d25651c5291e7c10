"""score_upload on a real functions-framework server, fed real CloudEvents, with the files in
the storage emulator: predictions, row accounting, malformed files, exactly-once outputs,
outages and crashes.

Expected predictions come from the bundled model's own pipeline, and expected flags and bounds
from its metadata by the definitions in tests/expected.py, never from the code that serves it.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import io
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
import pytest
import requests

from shared.schema import MODELS, CategoricalFeature, ModelSchema
from shared.store import LoadedModel, load_current, publish
from tests import expected as reference
from tests.integration.conftest import (
    BUNDLED,
    StartFunction,
    gcs_backend,
    launcher,
    new_bucket,
    publish_all,
)
from tests.integration.support import (
    FakeGcs,
    FunctionServer,
    PersistentFakeGcs,
    delete_object,
    kill_hard,
    list_objects,
    post_event,
    put_object,
    storage_event,
)

MODES = ("binary", "structured")
CUSTOMERS = "incoming/customer_needs/crm/customers.csv"
OUTSIDE = "outside_training_range"
# Valid for the schema (age 18-100, income 0-10,000,000), far beyond what the model was fit on.
FAR_OUT = {"age": "95", "gender": "female", "income": "5000000"}


# Fixtures and helpers


@pytest.fixture(scope="module")
def model_store(gcs: FakeGcs) -> str:
    """The bundled models published to the emulator: the MODEL_STORE the servers use."""
    return publish_all(gcs, new_bucket(gcs))


@pytest.fixture(scope="module")
def scorer(
    gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory, model_store: str
) -> Iterator[FunctionServer]:
    """One score_upload server for the tests that only deliver events (each to its own bucket).

    Small chunks, so that every file here spans several of them.
    """
    with launcher(gcs, tmp_path_factory.mktemp("scorer")) as start:
        yield start("score_upload", **scorer_env(model_store))


@pytest.fixture(scope="module")
def in_process() -> dict[str, LoadedModel]:
    """The same bundled models, loaded in this process to score the expected way."""
    return {name: load_current(BUNDLED, name) for name in MODELS}


def scorer_env(model_store: str, **extra: str) -> dict[str, str]:
    return {
        "FUNCTION_SIGNATURE_TYPE": "cloudevent",
        "MODEL_STORE": model_store,
        "UPLOAD_CHUNK_ROWS": "64",
        **extra,
    }


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def deliver(
    server: FunctionServer,
    bucket: str,
    name: str,
    generation: int,
    mode: str = "binary",
    *,
    event_id: str = "event-1",
    time: str | None = None,
) -> requests.Response:
    event = storage_event(bucket, name, generation, event_id=event_id, time=time or now())
    return post_event(server.url, event, mode)


def upload_and_deliver(
    gcs: FakeGcs,
    server: FunctionServer,
    bucket: str,
    data: bytes,
    name: str = CUSTOMERS,
    mode: str = "binary",
) -> int:
    generation = put_object(gcs, bucket, name, data)
    response = deliver(server, bucket, name, generation, mode)
    assert response.status_code == 200, response.text
    return generation


def folder(name: str, generation: int) -> str:
    model, _, rest = name.removeprefix("incoming/").partition("/")
    return f"results/{model}/{rest}/{generation}/"


def outputs(gcs: FakeGcs, bucket: str, name: str, generation: int) -> dict[str, bytes]:
    """The output objects of one upload, by file name."""
    prefix = folder(name, generation)
    return {
        key.removeprefix(prefix): gcs.get(bucket, key) for key in list_objects(gcs, bucket, prefix)
    }


def report_of(gcs: FakeGcs, bucket: str, name: str, generation: int) -> dict:
    return orjson.loads(gcs.get(bucket, folder(name, generation) + "report.json"))


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def as_csv(rows: list[list[str]], line_end: str = "\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=line_end).writerows(rows)
    return buffer.getvalue().encode()


def log_entries(server: FunctionServer) -> list[dict]:
    return [orjson.loads(line) for line in server.log_lines() if line.startswith("{")]


def messages(server: FunctionServer, event_id: str) -> list[str]:
    return [e["message"] for e in log_entries(server) if e.get("event_id") == event_id]


def wait_for(condition, timeout: float = 30.0, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


@functools.cache
def bundled(model_name: str) -> LoadedModel:
    return load_current(BUNDLED, model_name)


def sample(model_name: str, count: int, seed: int) -> tuple[list[dict[str, str]], pd.DataFrame]:
    """Valid rows as a person might type them (aliases, any case, numeric text), and their
    meaning. Numbers are drawn from the training range widened by a tenth on each side (within
    the schema's limits), so that some rows lie outside it."""
    schema = MODELS[model_name].schema
    ranges = bundled(model_name).metadata["training"]["ranges"]
    rng = np.random.default_rng(seed)
    text: dict[str, list[str]] = {}
    canonical: dict[str, list[object]] = {}
    for feature in schema.features:
        if isinstance(feature, CategoricalFeature):
            spellings = list(feature.lookup().items())  # (spelling, category)
            chosen = [spellings[i] for i in rng.integers(0, len(spellings), count)]
            text[feature.name] = [s.upper() if rng.random() < 0.3 else s for s, _ in chosen]
            canonical[feature.name] = [c for _, c in chosen]
        else:
            seen = ranges[feature.name]
            margin = (seen["max"] - seen["min"]) * 0.1
            low = max(feature.minimum, seen["min"] - margin)
            high = min(feature.maximum, seen["max"] + margin)
            values = np.round(rng.uniform(low, high, count), 2)
            text[feature.name] = [str(v) for v in values.tolist()]
            canonical[feature.name] = [float(v) for v in text[feature.name]]
    rows = [{name: text[name][i] for name in text} for i in range(count)]
    return rows, pd.DataFrame(canonical)[list(schema.feature_names)]


def predicted(model: LoadedModel, canonical: pd.DataFrame) -> list[float]:
    """The model's own pipeline on canonical rows, raised to the target's minimum."""
    values = model.pipeline.predict(canonical).tolist()
    return [reference.in_domain(model.metadata, float(v)) for v in values]


def flags(model: LoadedModel, canonical: pd.DataFrame) -> list[list[str]]:
    """Per canonical row, the features outside the training range."""
    return [reference.outside(model.metadata, row) for row in canonical.to_dict("records")]


def counted(flagged: list[list[str]]) -> dict[str, object]:
    """report.json's `outside_training_range` for scored rows with these flags."""
    by_feature = Counter(name for names in flagged for name in names)
    return {
        "rows": sum(1 for names in flagged if names),
        "by_feature": dict(sorted(by_feature.items())),
    }


def object_metadata(gcs: FakeGcs, bucket: str, key: str) -> dict[str, str]:
    """An object's custom metadata, as the emulator holds it."""
    response = requests.get(
        f"{gcs.url}/storage/v1/b/{bucket}/o/{requests.utils.quote(key, safe='')}", timeout=10
    )
    response.raise_for_status()
    return response.json().get("metadata", {})  # type: ignore[no-any-return]


def spoil(schema: ModelSchema, row: dict[str, str], kind: int) -> tuple[dict[str, str], str]:
    """One row made invalid in one of three ways, and the reason the function should give."""
    numeric = next(f for f in schema.features if not isinstance(f, CategoricalFeature))
    if kind == 0:
        return {**row, numeric.name: str(numeric.maximum * 10)}, (
            f"{numeric.name}: must be between {numeric.minimum:g} and {numeric.maximum:g}"
        )
    if kind == 1:
        return {**row, numeric.name: "n/a"}, f"{numeric.name}: must be a number"
    return {**row, numeric.name: ""}, f"{numeric.name}: missing"


# Predictions


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model_name", list(MODELS))
def test_scored_rows_carry_the_predictions_of_in_process_scoring(
    gcs: FakeGcs,
    bucket: str,
    scorer: FunctionServer,
    in_process: dict[str, LoadedModel],
    model_name: str,
    mode: str,
) -> None:
    schema = MODELS[model_name].schema
    rows, canonical = sample(model_name, 300, seed=len(model_name))
    columns = ["id", *reversed(schema.feature_names), "note"]  # any order, extras kept
    table = [columns] + [
        [f"row-{i}", *(row[name] for name in reversed(schema.feature_names)), f"n{i}"]
        for i, row in enumerate(rows)
    ]
    name = f"incoming/{model_name}/batch.csv"

    generation = upload_and_deliver(gcs, scorer, bucket, as_csv(table), name, mode)

    found = outputs(gcs, bucket, name, generation)
    scored = rows_of(found["scored.csv"])
    model = in_process[model_name]
    flagged = flags(model, canonical)
    assert any(flagged), "some rows lie outside the training range"
    assert not all(flagged), "and some inside"
    assert scored[0] == [*columns, schema.target, OUTSIDE]
    assert [row[:-2] for row in scored[1:]] == table[1:]
    values = [float(row[-2]) for row in scored[1:]]
    assert values == pytest.approx(predicted(model, canonical), rel=1e-12)
    assert [row[-1] for row in scored[1:]] == [";".join(names) for names in flagged]
    report = report_of(gcs, bucket, name, generation)
    assert report["status"] == "scored"
    assert report["model"] == {"name": model_name, "version": model.version}
    assert report["rows"] == {"read": 300, "scored": 300, "rejected": 0}
    assert report["strict"] is False
    assert report["outside_training_range"] == counted(flagged)
    assert report["event"]["id"] == "event-1"
    assert report["input"] == {"bucket": bucket, "name": name, "generation": str(generation)}
    assert set(found) == {"scored.csv", "rejected.csv", "report.json"}


def test_every_row_is_accounted_for_with_its_line_and_reasons(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer, in_process: dict[str, LoadedModel]
) -> None:
    schema = MODELS["customer_needs"].schema
    rows, canonical = sample("customer_needs", 200, seed=3)
    header = ["id", "age", "gender", "income"]
    lines, line, valid, rejected = [header], 2, [], []
    for i, row in enumerate(rows):
        cells = [f"id {i}\nsecond line" if i % 7 == 0 else f"id {i}"]  # quoted newlines
        if i % 5 == 0:
            row, reason = spoil(schema, row, i % 3)
            rejected.append([str(line), reason, cells[0], row["age"], row["gender"], row["income"]])
        else:
            valid.append(i)
        lines.append([*cells, row["age"], row["gender"], row["income"]])
        line += 1  # a spreadsheet's row: a quoted newline does not start one
    lines.append(["ragged", "40"])
    rejected.append([str(line), "has 2 fields; the header has 4", "ragged", "40"])

    generation = upload_and_deliver(gcs, scorer, bucket, as_csv(lines, "\r\n"))

    found = outputs(gcs, bucket, CUSTOMERS, generation)
    scored = rows_of(found["scored.csv"])
    assert [row[0] for row in scored[1:]] == [lines[i + 1][0] for i in valid]
    expected = predicted(in_process["customer_needs"], canonical.iloc[valid])
    assert [float(row[-2]) for row in scored[1:]] == pytest.approx(expected, rel=1e-12)
    assert rows_of(found["rejected.csv"]) == [["line_number", "reasons", *header], *rejected]
    report = report_of(gcs, bucket, CUSTOMERS, generation)
    assert report["rows"] == {"read": 201, "scored": len(valid), "rejected": len(rejected)}
    assert report["rows"]["read"] == report["rows"]["scored"] + report["rows"]["rejected"]
    counted = {(r["field"], r["reason"]): r["rows"] for r in report["rejection_reasons"]}
    assert counted == {
        (None, "wrong number of fields"): 1,
        ("age", "must be between 18 and 100"): 14,
        ("age", "must be a number"): 13,
        ("age", "missing"): 13,
    }


@pytest.mark.parametrize("variant", ["lf", "crlf_bom", "gzip", "gzip_crlf_bom"])
def test_gzip_bom_crlf_and_quoted_newlines_read_alike(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer, variant: str
) -> None:
    table = [
        ["id", "age", "gender", "income"],
        ['A "quoted"\nname', "35", "F", "52000"],
        ["B", "150", "m", "90000"],
        ["C, with comma", "61", "male", "90000"],
    ]
    plain = as_csv(table, "\r\n" if "crlf" in variant else "\n")
    data = (b"\xef\xbb\xbf" if "bom" in variant else b"") + plain
    name = f"incoming/customer_needs/{variant}.csv" + (".gz" if "gzip" in variant else "")

    generation = upload_and_deliver(
        gcs, scorer, bucket, gzip.compress(data) if "gzip" in variant else data, name
    )

    found = outputs(gcs, bucket, name, generation)
    scored, rejected = rows_of(found["scored.csv"]), rows_of(found["rejected.csv"])
    assert [row[:4] for row in scored] == [table[0], table[1], table[3]]
    # Line 3: the spreadsheet row of the third record (the quoted newline above starts none).
    assert rejected[1] == ["3", "age: must be between 18 and 100", *table[2]]


def test_formulas_are_neutralised_in_both_outputs_and_numbers_kept(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    table = [
        ["=cmd", "age", "gender", "income", "@note"],
        ["=1+2", "35", "F", "52000", "+SUM(A1)"],
        ["-2+3", "-5", "F", "52000", "\tx"],
        ["\rCR", "40", "male", "-1", "-7.5"],
    ]

    # CRLF line ends, so that the writer quotes the cell that starts with a carriage return.
    generation = upload_and_deliver(gcs, scorer, bucket, as_csv(table, "\r\n"))

    found = outputs(gcs, bucket, CUSTOMERS, generation)
    scored, rejected = rows_of(found["scored.csv"]), rows_of(found["rejected.csv"])
    assert scored[0][:5] == ["'=cmd", "age", "gender", "income", "'@note"]
    assert scored[1][:5] == ["'=1+2", "35", "F", "52000", "'+SUM(A1)"]
    assert float(scored[1][5]) > float("-inf")
    assert rejected[0][2:] == ["'=cmd", "age", "gender", "income", "'@note"]
    assert rejected[1][2:] == ["'-2+3", "-5", "F", "52000", "'\tx"]
    assert rejected[2][2:] == ["'\rCR", "40", "male", "-1", "-7.5"]


# Files that cannot be scored as a whole


HEADER = b"age,gender,income\n"
UNREADABLE = {
    "empty": (CUSTOMERS, b"", "empty", "empty"),
    "blank": (CUSTOMERS, b"\xef\xbb\xbf\r\n", "empty", "empty"),
    "latin-1": (CUSTOMERS, HEADER + "35,é,1\n".encode("latin-1"), "not_utf8", "UTF-8"),
    "pipes": (CUSTOMERS, b"age|gender|income\n35|F|1\n", "wrong_delimiter", "pipes"),
    "no header": (CUSTOMERS, b"35,F,52000\n", "missing_columns", "age, gender, income"),
    "other columns": (CUSTOMERS, b"name,city\nA,B\n", "missing_columns", "no column age"),
    "bad quotes": (CUSTOMERS, HEADER + b'35,"F"x,1\n', "bad_csv", "line 2"),
    "broken gzip": (CUSTOMERS + ".gz", gzip.compress(HEADER * 50)[:30], "bad_gzip", "gzip"),
    "unknown model": ("incoming/churn/a.csv", HEADER, "unknown_model", "customer_needs, market"),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_a_file_that_cannot_be_read_gets_a_report_saying_why(
    gcs: FakeGcs,
    bucket: str,
    scorer: FunctionServer,
    case: str,
) -> None:
    name, data, code, words = UNREADABLE[case]

    generation = upload_and_deliver(gcs, scorer, bucket, data, name)  # acknowledged: 200

    report = report_of(gcs, bucket, name, generation)
    assert report["status"] == "failed", case
    assert report["problem"]["code"] == code
    assert words in report["problem"]["message"]
    assert report["outputs"] is None
    assert set(outputs(gcs, bucket, name, generation)) == {"report.json"}
    assert not list_objects(gcs, bucket, "staging/")


def test_an_event_for_a_replaced_generation_is_reported_not_retried(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    replaced = put_object(gcs, bucket, CUSTOMERS, b"age,gender,income\n35,F,52000\n")
    put_object(gcs, bucket, CUSTOMERS, b"age,gender,income\n36,F,52000\n")

    response = deliver(scorer, bucket, CUSTOMERS, replaced)

    assert response.status_code == 200
    report = report_of(gcs, bucket, CUSTOMERS, replaced)
    assert report["problem"]["code"] == "input_gone"
    assert f"generation {replaced}" in report["problem"]["message"]


def test_numbers_written_with_currency_signs_are_rejected_saying_what_would_work(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer, tmp_path
) -> None:
    plain = (
        "must be a plain number such as 1234.5: currency signs and thousands separators are "
        "not read"
    )
    table = [
        ["id", "age", "gender", "income"],
        ["A", "35", "F", "$52,000"],
        ["B", "40", "m", "52.000,50 €"],
        ["C", "41", "m", "61,000"],
        ["D", "42", "f", "n/a"],
        ["E", "43", "f", "70000"],
    ]
    saved = tmp_path / "customers.csv"  # as a spreadsheet saves it: a BOM, CRLF, quotes
    with saved.open("w", encoding="utf-8-sig", newline="") as file:
        csv.writer(file, lineterminator="\r\n").writerows(table)

    generation = upload_and_deliver(gcs, scorer, bucket, saved.read_bytes())

    found = outputs(gcs, bucket, CUSTOMERS, generation)
    assert rows_of(found["rejected.csv"])[1:] == [
        [str(line), f"income: {plain}", *row] for line, row in enumerate(table[1:4], start=2)
    ] + [["5", "income: must be a number", *table[4]]]
    report = report_of(gcs, bucket, CUSTOMERS, generation)
    counted = {(r["field"], r["reason"]): r["rows"] for r in report["rejection_reasons"]}
    assert counted == {("income", plain): 3, ("income", "must be a number"): 1}  # no values
    logged = "\n".join(scorer.log_lines())
    assert not [row[3] for row in table[1:4] if row[3] in logged]


def test_nothing_from_the_files_reaches_the_logs(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    secret = f"SECRET-{uuid.uuid4().hex}"
    table = [
        ["id", "age", "gender", "income"],
        [secret, "35", "F", "52000"],
        [secret, "x", "y", "z"],
    ]
    upload_and_deliver(gcs, scorer, bucket, as_csv(table))
    upload_and_deliver(gcs, scorer, bucket, f"{secret};age\n".encode())

    assert not [line for line in scorer.log_lines() if secret in line]
    assert "upload scored" in messages(scorer, "event-1")


# Exactly-once results


def test_three_deliveries_one_after_another_leave_one_output_set(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    table = [["id", "age", "gender", "income"], ["A", "35", "F", "52000"], ["B", "5", "F", "1"]]
    generation = put_object(gcs, bucket, CUSTOMERS, as_csv(table))
    event_id = f"seq-{uuid.uuid4().hex}"

    states = []
    for mode in ("binary", "structured", "binary"):
        response = deliver(scorer, bucket, CUSTOMERS, generation, mode, event_id=event_id)
        assert response.status_code == 200
        objects = list_objects(gcs, bucket)
        states.append((objects, {key: gcs.get(bucket, key) for key in objects}))

    assert states[0] == states[1] == states[2]  # same names, generations and bytes
    prefix = folder(CUSTOMERS, generation)
    assert sorted(states[0][0]) == sorted(
        [CUSTOMERS, prefix + "scored.csv", prefix + "rejected.csv", prefix + "report.json"]
    )
    assert messages(scorer, event_id).count("upload scored") == 1
    assert messages(scorer, event_id).count("upload already scored; nothing to do") == 2


def test_three_deliveries_at_the_same_moment_leave_one_output_set(
    gcs: FakeGcs, scorer: FunctionServer
) -> None:
    rows, _ = sample("customer_needs", 2000, seed=11)
    table = [["age", "gender", "income"]] + [[r["age"], r["gender"], r["income"]] for r in rows]
    table[5][0] = "200"
    data = as_csv(table)
    alone, together = new_bucket(gcs), new_bucket(gcs)
    reference = upload_and_deliver(gcs, scorer, alone, data)
    generation = put_object(gcs, together, CUSTOMERS, data)
    event_id = f"concurrent-{uuid.uuid4().hex}"
    start = threading.Barrier(3)
    statuses: list[int] = []

    def call(mode: str) -> None:
        event = storage_event(together, CUSTOMERS, generation, event_id=event_id, time=now())
        start.wait()
        statuses.append(post_event(scorer.url, event, mode, timeout=120).status_code)

    threads = [threading.Thread(target=call, args=(mode,)) for mode in (*MODES, "binary")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200, 200]
    found = outputs(gcs, together, CUSTOMERS, generation)
    first = outputs(gcs, alone, CUSTOMERS, reference)
    assert set(found) == {"scored.csv", "rejected.csv", "report.json"}
    assert found["scored.csv"] == first["scored.csv"]
    assert found["rejected.csv"] == first["rejected.csv"]
    assert not list_objects(gcs, together, "staging/")
    written = [
        e
        for e in log_entries(scorer)
        if e.get("event_id") == event_id and e.get("report_written") is True
    ]
    assert len(written) == 1
    assert report_of(gcs, together, CUSTOMERS, generation)["timings"] == written[0]["timings"]


def test_a_reupload_gets_a_second_output_set_and_the_first_stays(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    first_data = as_csv([["age", "gender", "income"], ["35", "F", "52000"]])
    second_data = as_csv([["age", "gender", "income"], ["35", "F", "52000"], ["61", "M", "9e4"]])
    first = upload_and_deliver(gcs, scorer, bucket, first_data)
    before = outputs(gcs, bucket, CUSTOMERS, first)

    second = upload_and_deliver(gcs, scorer, bucket, second_data)

    assert second != first
    assert outputs(gcs, bucket, CUSTOMERS, first) == before
    assert report_of(gcs, bucket, CUSTOMERS, first)["rows"]["read"] == 1
    assert report_of(gcs, bucket, CUSTOMERS, second)["rows"]["read"] == 2


@pytest.mark.parametrize(
    "name",
    [
        "results/customer_needs/crm/customers.csv/1/scored.csv",
        "staging/customer_needs/crm/customers.csv/1/a/scored.csv",
        "exports/customers.csv",
        "incoming/customers.csv",
        "incoming/customer_needs/readme.txt",
    ],
)
def test_objects_outside_the_input_layout_are_ignored(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer, name: str
) -> None:
    generation = put_object(gcs, bucket, name, b"age,gender,income\n35,F,52000\n")
    event_id = f"ignored-{uuid.uuid4().hex}"

    response = deliver(scorer, bucket, name, generation, event_id=event_id)

    assert response.status_code == 200
    assert list_objects(gcs, bucket) == {name: generation}
    ignored = [e for e in log_entries(scorer) if e.get("event_id") == event_id]
    assert [e["message"] for e in ignored] == ["event ignored"]


def test_an_event_older_than_the_limit_is_dropped_with_a_log_line(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    generation = put_object(gcs, bucket, CUSTOMERS, b"age,gender,income\n35,F,52000\n")
    old = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    event_id = f"old-{uuid.uuid4().hex}"

    response = deliver(scorer, bucket, CUSTOMERS, generation, event_id=event_id, time=old)

    assert response.status_code == 200
    assert list_objects(gcs, bucket) == {CUSTOMERS: generation}
    assert messages(scorer, event_id) == ["event too old; dropped without scoring"]


def test_a_delivery_completes_outputs_that_a_crash_left_half_published(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    table = [["age", "gender", "income"], ["35", "F", "52000"], ["500", "F", "1"]]
    generation = upload_and_deliver(gcs, scorer, bucket, as_csv(table))
    complete = list_objects(gcs, bucket, "results/")
    before = outputs(gcs, bucket, CUSTOMERS, generation)
    prefix = folder(CUSTOMERS, generation)
    delete_object(gcs, bucket, prefix + "rejected.csv")  # as if the attempt died after scored.csv
    delete_object(gcs, bucket, prefix + "report.json")

    response = deliver(scorer, bucket, CUSTOMERS, generation, event_id="event-2")

    assert response.status_code == 200
    after = list_objects(gcs, bucket, "results/")
    assert after[prefix + "scored.csv"] == complete[prefix + "scored.csv"]  # left as it was
    assert outputs(gcs, bucket, CUSTOMERS, generation)["rejected.csv"] == before["rejected.csv"]
    assert report_of(gcs, bucket, CUSTOMERS, generation)["event"]["id"] == "event-2"


def test_outputs_made_another_way_are_never_overwritten(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer
) -> None:
    generation = put_object(gcs, bucket, CUSTOMERS, b"age,gender,income\n35,F,52000\n")
    prefix = folder(CUSTOMERS, generation)
    foreign = put_object(gcs, bucket, prefix + "scored.csv", b"made by another model\n")

    response = deliver(scorer, bucket, CUSTOMERS, generation)

    assert response.status_code == 200
    assert gcs.get(bucket, prefix + "scored.csv") == b"made by another model\n"
    assert list_objects(gcs, bucket, prefix)[prefix + "scored.csv"] == foreign
    report = report_of(gcs, bucket, CUSTOMERS, generation)
    assert report["problem"]["code"] == "output_conflict"
    assert "upload the file again" in report["problem"]["message"]


# Settings


def test_an_interval_level_adds_the_bounds_the_calibration_gives(
    gcs: FakeGcs,
    bucket: str,
    model_store: str,
    start_function: StartFunction,
    in_process: dict[str, LoadedModel],
) -> None:
    server = start_function("score_upload", **scorer_env(model_store, UPLOAD_INTERVAL_LEVEL="0.9"))
    rows, canonical = sample("market_trend", 50, seed=5)
    table = [list(canonical.columns)] + [[row[c] for c in canonical.columns] for row in rows]
    name = "incoming/market_trend/quarters.csv"
    model = in_process["market_trend"]
    values = predicted(model, canonical)
    records = canonical.to_dict("records")
    intervals = reference.intervals(model.metadata, records, values, 0.9)
    assert None in intervals, "some rows lie outside the training range: withheld"
    assert any(intervals), "and some inside"

    generation = upload_and_deliver(gcs, server, bucket, as_csv(table), name, "structured")

    scored = rows_of(outputs(gcs, bucket, name, generation)["scored.csv"])
    target = "future_sales"
    assert scored[0][-4:] == [target, f"{target}_lower", f"{target}_upper", OUTSIDE]
    for row, value, interval in zip(scored[1:], values, intervals, strict=True):
        assert float(row[-4]) == pytest.approx(value, rel=1e-12)
        if interval is None:
            assert row[-3:-1] == ["", ""]
        else:
            assert [float(v) for v in row[-3:-1]] == pytest.approx(list(interval), rel=1e-12)
    assert [row[-1] for row in scored[1:]] == [";".join(f) for f in flags(model, canonical)]
    assert report_of(gcs, bucket, name, generation)["interval_level"] == 0.9
    identity = object_metadata(gcs, bucket, folder(name, generation) + "scored.csv")
    assert (identity["interval-level"], identity["strict"]) == ("0.9", "false")


def test_rows_outside_the_training_range_are_flagged_and_counted(
    gcs: FakeGcs, bucket: str, scorer: FunctionServer, in_process: dict[str, LoadedModel]
) -> None:
    model = in_process["customer_needs"]
    table = [
        ["id", "age", "gender", "income"],
        ["inside", "35", "F", "52000"],
        ["far out", FAR_OUT["age"], FAR_OUT["gender"], FAR_OUT["income"]],
        ["rich", "35", "f", FAR_OUT["income"]],
        ["invalid", "150", "F", "52000"],
    ]
    canonical = pd.DataFrame(
        [{"age": float(r[1]), "gender": "female", "income": float(r[3])} for r in table[1:4]]
    )
    flagged = flags(model, canonical)
    assert flagged == [[], ["age", "income"], ["income"]]

    generation = upload_and_deliver(gcs, scorer, bucket, as_csv(table))

    found = outputs(gcs, bucket, CUSTOMERS, generation)
    scored = rows_of(found["scored.csv"])
    assert scored[0] == [*table[0], "purchase_amount", OUTSIDE]
    assert [row[0] for row in scored[1:]] == ["inside", "far out", "rich"]
    assert [float(row[-2]) for row in scored[1:]] == pytest.approx(
        predicted(model, canonical), rel=1e-12
    )
    assert [row[-1] for row in scored[1:]] == ["", "age;income", "income"]
    assert [row[0] for row in rows_of(found["rejected.csv"])[1:]] == ["5"]  # only the invalid
    report = report_of(gcs, bucket, CUSTOMERS, generation)
    assert report["strict"] is False
    assert report["rows"] == {"read": 4, "scored": 3, "rejected": 1}
    assert report["outside_training_range"] == {"rows": 2, "by_feature": {"age": 1, "income": 2}}
    identity = object_metadata(gcs, bucket, folder(CUSTOMERS, generation) + "scored.csv")
    assert identity["strict"] == "false"


def test_with_upload_strict_rows_outside_the_training_range_are_rejected(
    gcs: FakeGcs,
    bucket: str,
    model_store: str,
    start_function: StartFunction,
    in_process: dict[str, LoadedModel],
) -> None:
    server = start_function("score_upload", **scorer_env(model_store, UPLOAD_STRICT="true"))
    metadata = in_process["customer_needs"].metadata
    table = [
        ["id", "age", "gender", "income"],
        ["inside", "35", "F", "52000"],
        ["far out", FAR_OUT["age"], FAR_OUT["gender"], FAR_OUT["income"]],
        ["rich", "35", "f", FAR_OUT["income"]],
    ]

    def reason(feature: str) -> str:
        return f"{feature}: {reference.strict_reason(metadata, feature)}"

    generation = upload_and_deliver(gcs, server, bucket, as_csv(table))

    found = outputs(gcs, bucket, CUSTOMERS, generation)
    scored, rejected = rows_of(found["scored.csv"]), rows_of(found["rejected.csv"])
    assert [row[0] for row in scored[1:]] == ["inside"]
    assert scored[1][-1] == ""
    assert rejected == [
        ["line_number", "reasons", *table[0]],
        ["3", f"{reason('age')}; {reason('income')}", *table[2]],
        ["4", reason("income"), *table[3]],
    ]
    report = report_of(gcs, bucket, CUSTOMERS, generation)
    assert report["strict"] is True
    assert report["rows"] == {"read": 3, "scored": 1, "rejected": 2}
    assert report["outside_training_range"] == {"rows": 0, "by_feature": {}}
    by_reason = {(r["field"], r["reason"]): r["rows"] for r in report["rejection_reasons"]}
    assert by_reason == {
        (feature, reason(feature).removeprefix(f"{feature}: ")): rows
        for feature, rows in (("age", 1), ("income", 2))
    }
    for output in ("scored.csv", "rejected.csv"):
        identity = object_metadata(gcs, bucket, folder(CUSTOMERS, generation) + output)
        assert identity["strict"] == "true", output


def test_an_interval_the_model_cannot_give_is_reported_for_the_whole_file(
    gcs: FakeGcs, bucket: str, start_function: StartFunction
) -> None:
    pointer = orjson.loads(BUNDLED.read("customer_needs/current.json"))
    version = pointer["version"]
    metadata = orjson.loads(BUNDLED.read(f"customer_needs/{version}/metadata.json"))
    metadata.pop("intervals", None)
    artifact = BUNDLED.read(f"customer_needs/{version}/model.joblib")
    publish(gcs_backend(gcs, bucket), "customer_needs", version, artifact, metadata)
    server = start_function(
        "score_upload", **scorer_env(f"gs://{bucket}/models", UPLOAD_INTERVAL_LEVEL="0.9")
    )

    generation = upload_and_deliver(gcs, server, bucket, b"age,gender,income\n35,F,52000\n")

    report = report_of(gcs, bucket, CUSTOMERS, generation)
    assert report["problem"]["code"] == "options_unavailable"
    assert "not available for this model" in report["problem"]["message"]
    assert set(outputs(gcs, bucket, CUSTOMERS, generation)) == {"report.json"}


# Outages and crashes


def test_storage_down_fails_the_event_and_a_redelivery_succeeds(
    restartable_gcs: PersistentFakeGcs, start_function: StartFunction
) -> None:
    storage = restartable_gcs
    bucket = new_bucket(storage)
    store = publish_all(storage, bucket)
    server = start_function("score_upload", **scorer_env(store, STORAGE_EMULATOR_HOST=storage.url))
    data = b"age,gender,income\n35,F,52000\n"
    first = put_object(storage, bucket, CUSTOMERS, data)
    second_name = CUSTOMERS.replace("customers", "more")
    second = put_object(storage, bucket, second_name, data)

    storage.stop()  # before the model is loaded: the model store fails
    down = deliver(server, bucket, CUSTOMERS, first, event_id="retry-1")
    storage.start()
    up = wait_for(
        lambda: (r := deliver(server, bucket, CUSTOMERS, first, event_id="retry-1")).ok and r
    )
    storage.stop()  # with the model loaded: reading the file fails
    down_again = deliver(server, bucket, second_name, second, event_id="retry-2")
    storage.start()
    up_again = deliver(server, bucket, second_name, second, event_id="retry-2")

    assert down.status_code >= 500
    assert down_again.status_code >= 500
    assert up.status_code == up_again.status_code == 200
    for name, generation in ((CUSTOMERS, first), (second_name, second)):
        assert report_of(storage, bucket, name, generation)["rows"]["scored"] == 1
    retried = [e for e in log_entries(server) if e.get("event_id") in ("retry-1", "retry-2")]
    assert "upload not scored; the event will be retried" in [e["message"] for e in retried]
    # The log line says what failed and on which object (its report, looked for first).
    for entry in retried:
        if entry["message"] == "upload not scored; the event will be retried":
            name, generation = (
                (CUSTOMERS, first) if entry["event_id"] == "retry-1" else (second_name, second)
            )
            assert entry["error"].startswith("storage did not answer in time (stat ")
            assert folder(name, generation) + "report.json" in entry["error"]


def test_storage_lost_midway_fails_the_event_and_leaves_nothing_visible(
    restartable_gcs: PersistentFakeGcs, start_function: StartFunction
) -> None:
    storage = restartable_gcs
    bucket = new_bucket(storage)
    store = publish_all(storage, bucket)
    env = scorer_env(store, STORAGE_EMULATOR_HOST=storage.url, STORAGE_TIMEOUT_SECONDS="3")
    server = start_function("score_upload", **env)
    warm = put_object(storage, bucket, "incoming/customer_needs/warm.csv", b"age,gender,income\n")
    deliver(server, bucket, "incoming/customer_needs/warm.csv", warm)  # loads the model
    rows = 300_000
    generation = put_object(
        storage, bucket, CUSTOMERS, b"age,gender,income\n" + b"35,F,52000\n" * rows
    )
    answers: list[requests.Response] = []
    sender = threading.Thread(
        target=lambda: answers.append(deliver(server, bucket, CUSTOMERS, generation))
    )
    sender.start()
    wait_for(lambda: "scoring upload" in [e["message"] for e in log_entries(server)], 60, 0.02)
    time.sleep(0.3)  # reading and writing are under way

    storage.stop()
    sender.join()
    storage.start()

    assert answers[0].status_code >= 500
    assert list_objects(storage, bucket, folder(CUSTOMERS, generation)) == {}
    again = deliver(server, bucket, CUSTOMERS, generation)
    assert again.status_code == 200
    assert report_of(storage, bucket, CUSTOMERS, generation)["rows"]["scored"] == rows


def test_a_crash_midway_leaves_nothing_visible_and_the_next_delivery_completes(
    gcs: FakeGcs, bucket: str, model_store: str, start_function: StartFunction
) -> None:
    rows, _ = sample("customer_needs", 400_000, seed=21)
    data = as_csv([["age", "gender", "income"]] + [list(r.values()) for r in rows])
    generation = put_object(gcs, bucket, CUSTOMERS, data)
    env = scorer_env(model_store, UPLOAD_CHUNK_ROWS="5000")
    doomed = start_function("score_upload", **env)
    sender = threading.Thread(target=deliver_ignoring_errors, args=(doomed, bucket, generation))
    sender.start()
    wait_for(lambda: "scoring upload" in [e["message"] for e in log_entries(doomed)], 60, 0.05)
    time.sleep(0.5)

    kill_hard(doomed)
    sender.join()

    assert list_objects(gcs, bucket, "results/") == {}
    survivor = start_function("score_upload", **env)
    response = deliver(survivor, bucket, CUSTOMERS, generation)
    assert response.status_code == 200
    report = report_of(gcs, bucket, CUSTOMERS, generation)
    assert report["rows"] == {"read": 400_000, "scored": 400_000, "rejected": 0}
    assert len(rows_of(gcs.get(bucket, folder(CUSTOMERS, generation) + "scored.csv"))) == 400_001


def deliver_ignoring_errors(server: FunctionServer, bucket: str, generation: int) -> None:
    # The server is killed while it works: no answer is the point.
    with contextlib.suppress(requests.RequestException):
        deliver(server, bucket, CUSTOMERS, generation)
