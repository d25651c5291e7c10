from __future__ import annotations

import csv
import dataclasses
import gzip
import io
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pandas as pd
import pytest

from models.training import Trained
from shared.codecs import COMMAS, CsvRefused
from shared.predict import OUTSIDE, Options
from shared.schema import CUSTOMER_NEEDS
from shared.settings import SettingsError, from_env
from shared.store import LoadedModel, LocalFolder, load_current, publish
from shared.uploads import (
    AMBIGUOUS_DELIMITER,
    COLUMN_CLASH,
    EMPTY,
    FINALIZED,
    MISSING_COLUMNS,
    NOT_CSV,
    NOT_GZIP,
    NOT_UTF8,
    OPTIONS_UNAVAILABLE,
    REPEATED_COLUMN,
    WRONG_DELIMITER,
    FileProblem,
    Ignored,
    Tally,
    Upload,
    encode_report,
    is_too_old,
    neutralise,
    neutralise_column,
    output_identity,
    output_names,
    parse_event,
    parse_time,
    read_layout,
    report,
    score_stream,
    staging_names,
)
from shared.validation import validate_records
from tests import expected

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ADDED = ("purchase_amount",)


@pytest.fixture(scope="module")
def customer_needs(
    tmp_path_factory: pytest.TempPathFactory, customer_needs_v1: Trained
) -> LoadedModel:
    backend = LocalFolder(Path(tmp_path_factory.mktemp("store")))
    publish(backend, "customer_needs", "v1", customer_needs_v1.artifact, customer_needs_v1.metadata)
    return load_current(backend, "customer_needs")


def event(name: str, **changes: object) -> tuple[dict[str, object], dict[str, object]]:
    attributes: dict[str, object] = {"type": FINALIZED, "id": "e-1", "time": "2026-11-28T11:00:00Z"}
    data: dict[str, object] = {"bucket": "uploads", "name": name, "generation": "1700"}
    for key, value in changes.items():
        (attributes if key in ("type", "id", "time") else data)[key] = value
    return attributes, data


def upload(name: str = "incoming/customer_needs/q1.csv", generation: int = 1700) -> Upload:
    parsed = parse_event(*event(name, generation=str(generation)))
    assert isinstance(parsed, Upload)
    return parsed


@dataclasses.dataclass
class Scored:
    tally: Tally
    scored: list[list[str]]
    rejected: list[list[str]]


def score(
    model: LoadedModel, data: bytes, chunk_rows: int = 1000, options: Options | None = None
) -> Scored:
    scored, rejected = io.BytesIO(), io.BytesIO()
    tally = score_stream(
        io.BufferedReader(io.BytesIO(data)),  # type: ignore[arg-type]
        model,
        options or Options(),
        chunk_rows,
        scored.write,
        rejected.write,
    )
    return Scored(tally, parse_csv(scored.getvalue()), parse_csv(rejected.getvalue()))


def parse_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def problem_of(model: LoadedModel, data: bytes) -> FileProblem:
    with pytest.raises(FileProblem) as caught:
        score(model, data)
    return caught.value


def expected_predictions(model: LoadedModel, rows: list[dict[str, object]]) -> list[float]:
    """The pipeline's values for canonical rows, raised to the target's minimum as served."""
    values = model.pipeline.predict(pd.DataFrame(rows))
    return [expected.in_domain(model.metadata, float(value)) for value in values]


# Which objects are uploads


def test_an_upload_names_its_model_and_generation() -> None:
    parsed = parse_event(*event("incoming/customer_needs/2026/q1.csv.gz"))

    assert parsed == Upload(
        event_id="e-1",
        event_time=datetime(2026, 11, 28, 11, 0, tzinfo=UTC),
        bucket="uploads",
        name="incoming/customer_needs/2026/q1.csv.gz",
        generation=1700,
        model="customer_needs",
        relative_name="2026/q1.csv.gz",
    )
    assert parsed.known_model


@pytest.mark.parametrize(
    "name",
    [
        "results/customer_needs/q1.csv/1700/scored.csv",
        "staging/customer_needs/q1.csv/1700/abc/scored.csv",
        "customer_needs/q1.csv",
        "incoming/q1.csv",
        "incoming/customer_needs/",
        "incoming/customer_needs/notes.txt",
        "incoming/customer_needs/q1.csv.zip",
        "incoming//q1.csv",
    ],
)
def test_objects_outside_the_layout_are_ignored(name: str) -> None:
    assert isinstance(parse_event(*event(name)), Ignored)


def test_other_event_types_and_shapes_are_ignored() -> None:
    deleted = event("incoming/customer_needs/q1.csv", type="google.cloud.storage.object.v1.deleted")

    assert isinstance(parse_event(*deleted), Ignored)
    assert isinstance(parse_event(event("x")[0], None), Ignored)
    assert isinstance(parse_event(*event("incoming/customer_needs/q1.csv", generation="")), Ignored)


def test_an_unknown_model_folder_is_an_upload_that_cannot_be_scored() -> None:
    parsed = parse_event(*event("incoming/churn/q1.CSV"))

    assert isinstance(parsed, Upload)
    assert parsed.model == "churn"
    assert not parsed.known_model


def test_outputs_follow_the_input_name_and_generation() -> None:
    first, second = upload(generation=1700), upload(generation=1800)
    zipped = upload("incoming/customer_needs/q1.csv.gz")

    assert output_names(first).scored == "results/customer_needs/q1.csv/1700/scored.csv"
    assert output_names(first).rejected == "results/customer_needs/q1.csv/1700/rejected.csv"
    assert output_names(first).report == "results/customer_needs/q1.csv/1700/report.json"
    assert output_names(second).report == "results/customer_needs/q1.csv/1800/report.json"
    assert output_names(zipped).report == "results/customer_needs/q1.csv.gz/1700/report.json"
    staged = staging_names(first, "a1")
    assert staged.scored == "staging/customer_needs/q1.csv/1700/a1/scored.csv"
    assert all(
        not name.startswith("incoming/")
        for name in (*dataclasses.astuple(output_names(first)), *dataclasses.astuple(staged))
    )


def test_an_object_name_too_long_for_its_outputs_is_ignored() -> None:
    assert isinstance(parse_event(*event("incoming/customer_needs/" + "a" * 990 + ".csv")), Ignored)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T11:00:00Z", datetime(2026, 11, 28, 11, tzinfo=UTC)),
        ("2026-11-28T11:00:00.123456789Z", datetime(2026, 11, 28, 11, 0, 0, 123456, tzinfo=UTC)),
        ("2026-11-28T13:00:00+02:00", datetime(2026, 11, 28, 11, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_event_times_are_read_as_rfc_3339(text: str | None, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_events_older_than_the_limit_are_too_old() -> None:
    assert is_too_old(NOW - timedelta(seconds=101), NOW, 100)
    assert not is_too_old(NOW - timedelta(seconds=99), NOW, 100)
    assert not is_too_old(None, NOW, 100)


def test_the_output_identity_names_the_model_and_the_interval(
    customer_needs: LoadedModel,
) -> None:
    plain = output_identity(customer_needs, Options())
    interval = output_identity(customer_needs, Options(interval=0.9))

    assert plain == {
        "model": "customer_needs",
        "model-version": "v1",
        "model-sha256": customer_needs.sha256,
        "interval-level": "none",
        "strict": "false",
    }
    assert interval["interval-level"] == "0.9"
    # strict changes which rows are scored: the same file scored both ways are two outputs
    assert output_identity(customer_needs, Options(strict=True)) == {**plain, "strict": "true"}


# Formula neutralising


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tvalue", "'\tvalue"),
        ("\rvalue", "'\rvalue"),
        ("-5", "-5"),
        ("+3.25", "+3.25"),
        ("-1e-3", "-1e-3"),
        ("-.5", "-.5"),
        ("a=b", "a=b"),
        ("", ""),
        ("'=already", "'=already"),
    ],
)
def test_text_that_could_run_as_a_formula_is_neutralised(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


@pytest.mark.parametrize("separator", [";", "\t"])
def test_formulas_are_neutralised_whatever_the_files_separator(
    customer_needs: LoadedModel, separator: str
) -> None:
    header = ["id", "age", "gender", "income", "note"]
    rows = [header, ["A", "35", "F", "52000", "=1+2"], ["B", "17", "F", "1", "@x"]]
    data = "\r\n".join(separator.join(row) for row in rows).encode()
    scored, rejected = io.BytesIO(), io.BytesIO()

    score_stream(
        io.BufferedReader(io.BytesIO(data)),  # type: ignore[arg-type]
        customer_needs,
        Options(),
        10,
        scored.write,
        rejected.write,
    )

    def read(out: io.BytesIO) -> list[list[str]]:
        text = io.StringIO(out.getvalue().decode(), newline="")
        return list(csv.reader(text, delimiter=separator))

    assert [row[:5] for row in read(scored)] == [header, ["A", "35", "F", "52000", "'=1+2"]]
    assert read(rejected) == [
        ["line_number", "reasons", *header],
        ["3", "age: must be between 18 and 100", "B", "17", "F", "1", "'@x"],
    ]


def test_a_column_without_formulas_is_returned_as_is() -> None:
    plain = ["a", "b=c", "12"]

    assert neutralise_column(plain) is plain
    assert neutralise_column(["a", "x\n=y", "=z"]) == ["a", "x\n=y", "'=z"]


# Headers


def test_columns_are_found_by_name_in_any_order_and_case() -> None:
    layout = read_layout([" Income", "id", "GENDER", "age "], CUSTOMER_NEEDS, ADDED, COMMAS)

    assert layout.positions == {"age": 3, "gender": 2, "income": 0}
    assert layout.scored_header == [" Income", "id", "GENDER", "age ", "purchase_amount"]
    assert layout.rejected_header == ["line_number", "reasons", " Income", "id", "GENDER", "age "]


@pytest.mark.parametrize(
    ("header", "code", "words"),
    [
        (["age", "gender"], MISSING_COLUMNS, "no column income"),
        (["35", "F", "52000"], MISSING_COLUMNS, "Found: '35', 'F', '52000'"),
        (["age|gender|income"], WRONG_DELIMITER, "pipes"),
        (["age", "gender", "income", "Age"], REPEATED_COLUMN, "age twice (columns 1 and 4)"),
        (["age", "gender", "income", "Purchase Amount"], COLUMN_CLASH, "purchase_amount"),
    ],
)
def test_a_header_that_does_not_fit_is_refused_as_a_request_body_is(
    header: list[str], code: str, words: str
) -> None:
    with pytest.raises(CsvRefused) as caught:
        read_layout(header, CUSTOMER_NEEDS, ADDED, COMMAS)

    assert caught.value.code == code
    assert words in caught.value.message


# Streaming a file through the model


def test_valid_rows_are_scored_like_the_pipeline_and_extra_columns_kept(
    customer_needs: LoadedModel,
) -> None:
    data = b"id,income,gender,age,note\nA,52000,F,35,x\nB,90000,male,61,\n"

    result = score(customer_needs, data)

    expected = expected_predictions(
        customer_needs,
        [
            {"age": 35.0, "gender": "female", "income": 52000.0},
            {"age": 61.0, "gender": "male", "income": 90000.0},
        ],
    )
    assert result.scored[0] == ["id", "income", "gender", "age", "note", "purchase_amount", OUTSIDE]
    assert [row[:5] for row in result.scored[1:]] == [
        ["A", "52000", "F", "35", "x"],
        ["B", "90000", "male", "61", ""],
    ]
    assert [float(row[5]) for row in result.scored[1:]] == expected
    assert [row[6] for row in result.scored[1:]] == ["", ""]  # both inside the training range
    assert result.rejected == [["line_number", "reasons", "id", "income", "gender", "age", "note"]]
    assert (result.tally.read, result.tally.scored, result.tally.rejected) == (2, 2, 0)


def test_every_row_is_scored_or_rejected_with_the_line_a_spreadsheet_shows(
    customer_needs: LoadedModel,
) -> None:
    data = (
        b"\xef\xbb\xbfid,age,gender,income\r\n"  # line 1, with a BOM
        b'"multi\r\nline",40,F,50000\r\n'  # line 2: one record, one spreadsheet row
        b"\r\n"  # line 3: blank, not a row
        b"C,17,F,50000\r\n"  # line 4: too young
        b'"D ""q""",40,unknown,abc\r\n'  # line 5: two faults
        b"E,40,F\r\n"  # line 6: a field short
        b"F,41,m,60000,extra\r\n"  # line 7: a field too many
        b"G,42,o,70000"  # line 8: no final newline
    )

    result = score(customer_needs, data, chunk_rows=2)

    assert [row[0] for row in result.scored[1:]] == ["multi\r\nline", "G"]
    assert result.rejected[1:] == [
        ["4", "age: must be between 18 and 100", "C", "17", "F", "50000"],
        [
            "5",
            "gender: must be one of female, male, other; income: must be a number",
            'D "q"',
            "40",
            "unknown",
            "abc",
        ],
        ["6", "has 3 fields; the header has 4", "E", "40", "F"],
        ["7", "has 5 fields; the header has 4", "F", "41", "m", "60000", "extra"],
    ]
    tally = result.tally
    assert (tally.read, tally.scored, tally.rejected) == (6, 2, 4)
    assert tally.read == tally.scored + tally.rejected
    assert tally.reasons_counted() == [
        {"field": None, "reason": "wrong number of fields", "rows": 2},
        {"field": "age", "reason": "must be between 18 and 100", "rows": 1},
        {"field": "gender", "reason": "must be one of female, male, other", "rows": 1},
        {"field": "income", "reason": "must be a number", "rows": 1},
    ]


def test_chunk_size_changes_no_row_only_the_last_bits_of_predictions(
    customer_needs: LoadedModel,
) -> None:
    lines = [b"id,age,gender,income"] + [
        f"r{i},{10 + i % 95},{'FMO'[i % 3]},{1000 * i}".encode() for i in range(250)
    ]
    data = b"\n".join(lines) + b"\n"

    outputs = [score(customer_needs, data, chunk_rows=size) for size in (1, 7, 100, 10_000)]

    first = outputs[0]
    assert first.tally.read == 250
    assert 0 < first.tally.rejected < 250
    for other in outputs[1:]:
        assert other.rejected == first.rejected
        assert [row[:4] for row in other.scored] == [row[:4] for row in first.scored]
        assert [float(row[4]) for row in other.scored[1:]] == pytest.approx(
            [float(row[4]) for row in first.scored[1:]], rel=1e-12
        )


def test_the_same_file_and_chunk_size_give_the_same_bytes(customer_needs: LoadedModel) -> None:
    data = b"id,age,gender,income\n" + b"".join(
        f"r{i},{18 + i % 80},F,{500 * i}\n".encode() for i in range(3000)
    )

    assert score(customer_needs, data, chunk_rows=128) == score(
        customer_needs, data, chunk_rows=128
    )


def test_gzip_crlf_and_lf_files_give_the_same_outputs(customer_needs: LoadedModel) -> None:
    text = "id,age,gender,income\nA,35,F,52000\nB,150,M,1\n"
    variants = [
        text.encode(),
        text.replace("\n", "\r\n").encode(),
        b"\xef\xbb\xbf" + text.encode(),
        gzip.compress(text.replace("\n", "\r\n").encode()),
    ]

    results = [score(customer_needs, variant) for variant in variants]

    assert all(result.scored == results[0].scored for result in results)
    assert all(result.rejected == results[0].rejected for result in results)
    assert results[0].rejected[1][:2] == ["3", "age: must be between 18 and 100"]


def test_output_cells_are_neutralised_but_numbers_and_predictions_are_not(
    customer_needs: LoadedModel,
) -> None:
    data = b'=HYPERLINK("x"),age,gender,income\n@A1,35,F,52000\n-2+3,-5,F,52000\n'

    result = score(customer_needs, data)

    assert result.scored[0][0] == '\'=HYPERLINK("x")'
    assert result.scored[1][0] == "'@A1"
    assert result.rejected[0][2] == '\'=HYPERLINK("x")'
    assert result.rejected[1][2:4] == ["'-2+3", "-5"]
    assert float(result.scored[1][4]) == pytest.approx(
        expected_predictions(customer_needs, [{"age": 35, "gender": "female", "income": 52000}])[0]
    )


def test_a_header_only_file_scores_nothing(customer_needs: LoadedModel) -> None:
    result = score(customer_needs, b"age,gender,income\n\n")

    assert result.scored == [["age", "gender", "income", "purchase_amount", OUTSIDE]]
    assert (result.tally.read, result.tally.scored, result.tally.rejected) == (0, 0, 0)


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", EMPTY, "empty"),
        (b"\xef\xbb\xbf\r\n\r\n", EMPTY, "empty"),
        (gzip.compress(b"", mtime=0), EMPTY, "empty"),
        (b"age,gender,income\n35,F,52000\n40,\xff\xfe,1\n", NOT_UTF8, "not UTF-8"),
        ("age,gender,income\n".encode("utf-16"), NOT_UTF8, "not UTF-8"),
        (b"age|gender|income\n35|F|52000\n", WRONG_DELIMITER, "pipes"),
        (b"age,gender;income\n35,F;52000\n", AMBIGUOUS_DELIMITER, "commas and semicolons"),
        (b"name,city\nA,B\n", MISSING_COLUMNS, "no column age, gender, income"),
        (b'age,gender,income\n35,"F"x,1\n', NOT_CSV, "line 2"),
        (b'age,gender,income\n35,"F,1\n36,F,2\n', NOT_CSV, "line 2"),  # where the quote opens
        (gzip.compress(b"age,gender,income\n" * 100, mtime=0)[:-12], NOT_GZIP, "gzip"),
    ],
)
def test_files_that_cannot_be_read_as_a_whole_say_why(
    customer_needs: LoadedModel, data: bytes, code: str, words: str
) -> None:
    problem = problem_of(customer_needs, data)

    assert problem.code == code
    assert words in problem.message


def test_an_interval_adds_bounds_around_the_prediction(customer_needs: LoadedModel) -> None:
    result = score(customer_needs, b"age,gender,income\n35,F,52000\n", options=Options(0.9))

    header, row = result.scored
    assert header[-4:] == [
        "purchase_amount",
        "purchase_amount_lower",
        "purchase_amount_upper",
        OUTSIDE,
    ]
    value, lower, upper = map(float, row[-4:-1])
    canonical = {"age": 35.0, "gender": "female", "income": 52000.0}
    wanted = expected.interval(customer_needs.metadata, canonical, value, 0.9)
    assert wanted is not None
    assert (lower, upper) == pytest.approx(wanted, rel=1e-12)
    assert lower < value < upper
    assert row[-1] == ""


def test_an_interval_is_left_empty_where_a_row_is_outside_the_training_range(
    customer_needs: LoadedModel,
) -> None:
    data = b"id,age,gender,income\nA,35,F,52000\nB,35,F,10000000\n"

    result = score(customer_needs, data, options=Options(0.9))

    inside, outside = result.scored[1:]
    assert all(cell for cell in inside[4:7])
    assert outside[4]  # a value ...
    assert outside[5:7] == ["", ""]  # ... but no interval
    assert outside[7] == "income"


def test_an_interval_the_model_cannot_give_is_a_whole_file_problem(
    customer_needs: LoadedModel,
) -> None:
    metadata = {key: value for key, value in customer_needs.metadata.items() if key != "intervals"}
    without = dataclasses.replace(customer_needs, metadata=metadata)

    with pytest.raises(FileProblem) as caught:
        score(without, b"age,gender,income\n35,F,52000\n", options=Options(0.9))

    assert caught.value.code == OPTIONS_UNAVAILABLE
    assert "not available for this model" in caught.value.message


def test_an_interval_level_the_calibration_cannot_promise_is_a_whole_file_problem(
    customer_needs: LoadedModel,
) -> None:
    scores = customer_needs.metadata["intervals"]["scores"]
    too_high = (len(scores) + 0.5) / (len(scores) + 1)

    with pytest.raises(FileProblem) as caught:
        score(customer_needs, b"age,gender,income\n35,F,52000\n", options=Options(too_high))

    assert caught.value.code == OPTIONS_UNAVAILABLE
    assert f"{len(scores)} calibration rows" in caught.value.message


def test_a_column_named_like_the_outside_flags_clashes(customer_needs: LoadedModel) -> None:
    problem = problem_of(customer_needs, f"age,gender,income,{OUTSIDE}\n35,F,52000,\n".encode())

    assert problem.code == COLUMN_CLASH
    assert OUTSIDE in problem.message


# Rows outside the training range: flagged, or with strict rejected


def mixed_file(model: LoadedModel) -> bytes:
    """Rows inside the training range, past each end of it, and invalid ones; 3 rows a pass."""
    ranges = model.metadata["training"]["ranges"]
    low, high = ranges["income"]["min"] - 1, ranges["income"]["max"] + 1
    old = ranges["age"]["max"] + 1
    rows = [
        "35,F,52000",
        f"35,F,{low!r}",
        f"{old!r},m,{high!r}",
        "17,F,52000",  # invalid: rejected whatever the mode
        f"{old!r},x,60000",
        "61,male,90000",
    ]
    return ("age,gender,income\n" + "\n".join(rows * 3) + "\n").encode()


def flags_of(model: LoadedModel, data: bytes) -> dict[int, list[str]]:
    """Per valid data line (header = line 1), tests/expected.py's features outside."""
    lines = data.decode().splitlines()[1:]
    records = [
        dict(zip(("age", "gender", "income"), line.split(","), strict=True)) for line in lines
    ]
    canonical, positions, _ = validate_records(records, model.schema)
    return {
        position + 2: expected.outside(model.metadata, row)
        for position, row in zip(positions, canonical, strict=True)
    }


def strict_reason(model: LoadedModel, feature: str) -> str:
    return f"{feature}: {expected.strict_reason(model.metadata, feature)}"


@pytest.mark.parametrize("chunk_rows", [1, 4, 1000])
def test_scored_rows_name_their_features_outside_and_the_tally_counts_them(
    customer_needs: LoadedModel, chunk_rows: int
) -> None:
    data = mixed_file(customer_needs)
    flags = flags_of(customer_needs, data)

    result = score(customer_needs, data, chunk_rows=chunk_rows)

    assert result.scored[0][-1] == OUTSIDE
    assert [row[-1] for row in result.scored[1:]] == [";".join(names) for names in flags.values()]
    assert result.tally.outside_counted() == {
        "rows": sum(1 for names in flags.values() if names),
        "by_feature": dict(sorted(Counter(n for names in flags.values() for n in names).items())),
    }
    assert result.tally.outside_rows > 0
    assert [row[0] for row in result.rejected[1:]] == ["5", "11", "17"]  # the invalid rows only


@pytest.mark.parametrize("chunk_rows", [1, 4, 1000])
def test_strict_rejects_exactly_the_rows_outside_the_training_range(
    customer_needs: LoadedModel, chunk_rows: int
) -> None:
    data = mixed_file(customer_needs)
    flags = flags_of(customer_needs, data)
    lenient = score(customer_needs, data, chunk_rows=chunk_rows)

    result = score(customer_needs, data, chunk_rows=chunk_rows, options=Options(strict=True))

    flagged = {line: names for line, names in flags.items() if names}
    assert flagged
    assert len(flagged) < len(flags)
    kept = [row for row, names in zip(lenient.scored[1:], flags.values(), strict=True) if not names]
    assert result.scored[1:] == kept
    assert all(row[-1] == "" for row in result.scored[1:])
    strict_rejected = {int(row[0]): row[1] for row in result.rejected[1:] if int(row[0]) in flagged}
    assert strict_rejected == {
        line: "; ".join(strict_reason(customer_needs, name) for name in names)
        for line, names in flagged.items()
    }
    others = [row for row in result.rejected[1:] if int(row[0]) not in flagged]
    assert others == lenient.rejected[1:]  # the invalid rows, rejected as before
    tally = result.tally
    assert (tally.read, tally.scored) == (lenient.tally.read, lenient.tally.scored - len(flagged))
    assert tally.rejected == lenient.tally.rejected + len(flagged)
    assert tally.outside_counted() == {"rows": 0, "by_feature": {}}  # no scored row is outside
    strict_counts = {
        (r["field"], r["rows"]) for r in tally.reasons_counted() if r["reason"].endswith("(strict)")
    }
    by_feature = Counter(name for names in flagged.values() for name in names)
    assert strict_counts == set(by_feature.items())


# Reports


def test_a_report_accounts_for_every_row() -> None:
    tally = Tally(read=3, scored=2, rejected=1)
    tally.reasons[("age", "missing")] += 1

    document = report(
        upload(),
        model_version="v1",
        options=Options(),
        tally=tally,
        problem=None,
        timings={"scoring_seconds": 0.5},
    )

    assert document == {
        "status": "scored",
        "event": {"id": "e-1", "time": "2026-11-28T11:00:00+00:00"},
        "input": {
            "bucket": "uploads",
            "name": "incoming/customer_needs/q1.csv",
            "generation": "1700",
        },
        "model": {"name": "customer_needs", "version": "v1"},
        "interval_level": None,
        "strict": False,
        "rows": {"read": 3, "scored": 2, "rejected": 1},
        "outside_training_range": {"rows": 0, "by_feature": {}},
        "rejection_reasons": [{"field": "age", "reason": "missing", "rows": 1}],
        "outputs": {
            "scored": "results/customer_needs/q1.csv/1700/scored.csv",
            "rejected": "results/customer_needs/q1.csv/1700/rejected.csv",
        },
        "problem": None,
        "timings": {"scoring_seconds": 0.5},
    }
    assert orjson.loads(encode_report(document)) == document


def test_a_report_says_whether_it_was_strict_and_counts_the_rows_outside(
    customer_needs: LoadedModel,
) -> None:
    data = mixed_file(customer_needs)
    for options in (Options(), Options(strict=True)):
        tally = score(customer_needs, data, options=options).tally

        document = report(
            upload(), model_version="v1", options=options, tally=tally, problem=None, timings={}
        )

        assert document["strict"] is options.strict
        assert document["outside_training_range"] == tally.outside_counted()
        assert document["rows"] == {
            "read": tally.read,
            "scored": tally.scored,
            "rejected": tally.rejected,
        }
        assert orjson.loads(encode_report(document)) == document
        assert (document["outside_training_range"]["rows"] > 0) is not options.strict


def test_a_failed_report_names_the_problem_and_no_outputs() -> None:
    document = report(
        upload(),
        model_version=None,
        options=Options(),
        tally=None,
        problem=FileProblem(EMPTY, "the file is empty"),
        timings={},
    )

    assert document["status"] == "failed"
    assert document["problem"] == {"code": EMPTY, "message": "the file is empty"}
    assert document["outputs"] is None
    assert document["rows"] is None
    assert document["outside_training_range"] is None


# Settings


def test_upload_settings_default_to_a_day_50000_rows_and_no_interval() -> None:
    settings = from_env({})

    assert settings.max_event_age_seconds == 86_400
    assert settings.upload_chunk_rows == 50_000
    assert settings.upload_interval_level is None
    assert settings.upload_strict is False


def test_upload_settings_are_read_from_the_environment() -> None:
    settings = from_env(
        {
            "MAX_EVENT_AGE_SECONDS": "600",
            "UPLOAD_CHUNK_ROWS": "1000",
            "UPLOAD_INTERVAL_LEVEL": "0.8",
            "UPLOAD_STRICT": " true ",
        }
    )

    assert (settings.max_event_age_seconds, settings.upload_chunk_rows) == (600.0, 1000)
    assert settings.upload_interval_level == 0.8
    assert settings.upload_strict is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("UPLOAD_INTERVAL_LEVEL", "90%"),
        ("UPLOAD_INTERVAL_LEVEL", "1"),
        ("UPLOAD_INTERVAL_LEVEL", "0"),
        ("UPLOAD_INTERVAL_LEVEL", "nan"),
        ("UPLOAD_CHUNK_ROWS", "0"),
        ("UPLOAD_CHUNK_ROWS", "1.5"),
        ("MAX_EVENT_AGE_SECONDS", "-1"),
        ("UPLOAD_STRICT", "maybe"),
    ],
)
def test_a_bad_upload_setting_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} must be"):
        from_env({name: value})
