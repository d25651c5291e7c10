from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.codecs import (
    Table,
    cell_texts,
    encode_infer,
    encode_json,
    encode_table,
    envelope,
    float_texts,
    instance_rows,
    json_answer,
    model_metadata,
    parse_json,
    read_csv,
)
from shared.errors import BadRequest, InvalidInput, PayloadTooLarge, Problem
from shared.predict import OUTSIDE, Interval, Options, Prediction, output_columns
from shared.predict._applicability import Outside
from shared.schema import CUSTOMER_NEEDS
from shared.validation import ABSENT, Rows

LIMIT = 100


@dataclasses.dataclass(frozen=True)
class Decoded:
    """A body as the validators see it: rows of raw values, and the options asked for."""

    rows: pd.DataFrame
    parameters: Mapping[str, Any]


def decode_json(body: bytes, max_instances: int) -> Decoded:
    parsed = envelope(parse_json(body), max_instances)
    return Decoded(instance_rows(parsed.instances).frame(), parsed.parameters)


def decode_csv(body: bytes, max_instances: int) -> Decoded:
    """Every column of the body by its name as sent (the model's are found later, by name)."""
    table = read_csv(body, max_instances)
    return Decoded(Rows.of_columns(table.columns(), len(table)).frame(), {})


def instances_frame(instances: list[object]) -> pd.DataFrame:
    return instance_rows(instances).frame()


def encode_csv(frame: pd.DataFrame) -> bytes:
    """Text columns written as the CSV answer writes the rows it was sent."""
    cells = [frame[name].tolist() for name in frame.columns]
    return encode_table(Table(list(frame.columns), cells), {})


def records(frame: pd.DataFrame) -> list[dict[str, object]]:
    return frame.to_dict(orient="records")


# decode_json


def test_json_envelope_gives_one_row_per_instance_and_the_parameters() -> None:
    body = b"""{"instances": [{"age": 35, "gender": "f", "income": 52000},
                              {"age": "40", "gender": "m", "income": 1.5}],
               "parameters": {"interval": 0.9}}"""

    decoded = decode_json(body, LIMIT)

    assert records(decoded.rows) == [
        {"age": 35, "gender": "f", "income": 52000},
        {"age": "40", "gender": "m", "income": 1.5},
    ]
    assert decoded.rows.index.tolist() == [0, 1]
    assert dict(decoded.parameters) == {"interval": 0.9}


def test_json_values_are_kept_raw_for_the_validator() -> None:
    body = b'{"instances": [{"age": true, "gender": null, "income": {"a": [1]}}]}'

    row = records(decode_json(body, LIMIT).rows)[0]

    assert row["age"] is True
    assert row["gender"] is None
    assert row["income"] == {"a": [1]}


def test_a_bare_object_is_one_instance_without_parameters() -> None:
    decoded = decode_json(b'{"age": 35, "gender": "f", "income": 52000}', LIMIT)

    assert records(decoded.rows) == [{"age": 35, "gender": "f", "income": 52000}]
    assert dict(decoded.parameters) == {}


@pytest.mark.parametrize("parameters", [b"", b', "parameters": null', b', "parameters": {}'])
def test_parameters_default_to_none_asked_for(parameters: bytes) -> None:
    body = b'{"instances": [{"age": 35}]' + parameters + b"}"

    assert dict(decode_json(body, LIMIT).parameters) == {}


def test_keys_missing_from_an_instance_are_absent_not_null() -> None:
    body = b'{"instances": [{"age": 35, "gender": null}, {"income": 5}]}'

    rows = decode_json(body, LIMIT).rows

    assert list(rows.columns) == ["age", "gender", "income"]
    assert rows.loc[0, "gender"] is None
    assert rows.loc[0, "income"] is ABSENT
    assert rows.loc[1, "age"] is ABSENT
    assert rows.loc[1, "gender"] is ABSENT


def test_an_empty_instances_list_gives_an_empty_frame() -> None:
    rows = decode_json(b'{"instances": []}', LIMIT).rows

    assert rows.empty
    assert len(rows) == 0


def test_empty_instances_are_rows_without_columns() -> None:
    rows = decode_json(b'{"instances": [{}, {}]}', LIMIT).rows

    assert len(rows) == 2
    assert list(rows.columns) == []


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b'{"instances": [}', b"{'age': 1}", b'{"age": 1,}', b"\xff\xfe", b"nul"],
)
def test_malformed_json_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="not valid JSON"):
        decode_json(body, LIMIT)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_standard_number_literals_are_a_bad_request(literal: bytes) -> None:
    body = b'{"instances": [{"age": ' + literal + b"}]}"

    with pytest.raises(BadRequest, match="not valid JSON"):
        decode_json(body, LIMIT)


@pytest.mark.parametrize("body", [b"[]", b'[{"age": 1}]', b"42", b'"text"', b"null"])
def test_a_body_that_is_not_an_object_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="must be a JSON object"):
        decode_json(body, LIMIT)


@pytest.mark.parametrize("instances", [b"{}", b'"rows"', b"null", b"3"])
def test_instances_must_be_a_list(instances: bytes) -> None:
    with pytest.raises(BadRequest, match='"instances" must be a list'):
        decode_json(b'{"instances": ' + instances + b"}", LIMIT)


@pytest.mark.parametrize("parameters", [b"[]", b'"interval"', b"0.9", b"true"])
def test_parameters_must_be_an_object(parameters: bytes) -> None:
    body = b'{"instances": [], "parameters": ' + parameters + b"}"

    with pytest.raises(BadRequest, match='"parameters" must be an object'):
        decode_json(body, LIMIT)


def test_instances_that_are_not_objects_are_listed_by_row() -> None:
    body = b'{"instances": [{"age": 35}, [35, "f", 1], 35, {"age": 1}, null, "x"]}'

    with pytest.raises(InvalidInput) as caught:
        decode_json(body, LIMIT)

    assert caught.value.problems == (
        Problem(1, None, "must be a JSON object"),
        Problem(2, None, "must be a JSON object"),
        Problem(4, None, "must be a JSON object"),
        Problem(5, None, "must be a JSON object"),
    )


def test_more_instances_than_allowed_is_payload_too_large() -> None:
    body = orjson.dumps({"instances": [{"age": 35}] * 4})

    with pytest.raises(PayloadTooLarge, match="at most 3 instances"):
        decode_json(body, max_instances=3)


def test_exactly_the_allowed_number_of_instances_is_accepted() -> None:
    body = orjson.dumps({"instances": [{"age": 35}] * 3})

    assert len(decode_json(body, max_instances=3).rows) == 3


def test_unexpected_top_level_keys_are_a_bad_request() -> None:
    body = b'{"instances": [], "parameters": {}, "inputs": [], "model": "x"}'

    with pytest.raises(BadRequest, match="unexpected top-level keys: inputs, model"):
        decode_json(body, LIMIT)


def test_instances_frame_raises_before_building_anything_for_non_objects() -> None:
    with pytest.raises(InvalidInput) as caught:
        instances_frame([{"a": 1}, "b"])

    assert caught.value.problems == (Problem(1, None, "must be a JSON object"),)


# decode_csv

HEADER = b"age,gender,income\r\n"


def test_csv_rows_are_read_as_text() -> None:
    decoded = decode_csv(HEADER + b"35,f,52000\r\n40,m,1.5\r\n", LIMIT)

    assert records(decoded.rows) == [
        {"age": "35", "gender": "f", "income": "52000"},
        {"age": "40", "gender": "m", "income": "1.5"},
    ]
    assert decoded.rows.index.tolist() == [0, 1]
    assert dict(decoded.parameters) == {}


def test_csv_with_a_byte_order_mark() -> None:
    rows = decode_csv(b"\xef\xbb\xbf" + HEADER + b"35,f,52000\r\n", LIMIT).rows

    assert list(rows.columns) == ["age", "gender", "income"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_csv_line_endings(newline: bytes) -> None:
    body = newline.join([b"age,gender,income", b"35,f,52000", b"40,m,1"]) + newline

    rows = decode_csv(body, LIMIT).rows

    assert records(rows) == [
        {"age": "35", "gender": "f", "income": "52000"},
        {"age": "40", "gender": "m", "income": "1"},
    ]


def test_csv_without_a_final_newline() -> None:
    rows = decode_csv(HEADER + b"35,f,52000", LIMIT).rows

    assert records(rows) == [{"age": "35", "gender": "f", "income": "52000"}]


def test_quoted_csv_fields_keep_newlines_commas_and_quotes() -> None:
    body = b'note,age\r\n"line one\r\nline two, with a comma",35\r\n"say ""hi""",36\r\n'

    rows = decode_csv(body, LIMIT).rows

    assert records(rows) == [
        {"note": "line one\r\nline two, with a comma", "age": "35"},
        {"note": 'say "hi"', "age": "36"},
    ]


def test_blank_csv_lines_are_skipped() -> None:
    body = HEADER + b"\r\n35,f,52000\r\n\r\n\r\n40,m,1\r\n\r\n"

    rows = decode_csv(body, LIMIT).rows

    assert rows["age"].tolist() == ["35", "40"]
    assert rows.index.tolist() == [0, 1]


def test_csv_columns_in_any_order_and_extra_columns_kept_as_sent() -> None:
    body = b"customer_id,income,gender,age,note\r\n007,52000,F, 35 ,\r\n"

    rows = decode_csv(body, LIMIT).rows

    assert list(rows.columns) == ["customer_id", "income", "gender", "age", "note"]
    assert records(rows) == [
        {"customer_id": "007", "income": "52000", "gender": "F", "age": " 35 ", "note": ""}
    ]


def test_empty_csv_cells_are_empty_strings() -> None:
    rows = decode_csv(HEADER + b",,\r\n", LIMIT).rows

    assert records(rows) == [{"age": "", "gender": "", "income": ""}]


def test_a_header_without_rows_gives_an_empty_frame() -> None:
    rows = decode_csv(HEADER, LIMIT).rows

    assert list(rows.columns) == ["age", "gender", "income"]
    assert len(rows) == 0


@pytest.mark.parametrize(
    ("body", "columns"),
    [(b"age,gender,age\r\n1,f,2\r\n", "1 and 3"), (b"Age,gender,income, AGE \r\n", "1 and 4")],
)
def test_a_feature_named_twice_in_the_header_is_a_bad_request(body: bytes, columns: str) -> None:
    table = read_csv(body, LIMIT)

    with pytest.raises(BadRequest, match=rf"names the column age twice \(columns {columns}\)"):
        table.rows(CUSTOMER_NEEDS)


@pytest.mark.parametrize("header", [b"id,id,age,gender,income", b",,age,gender,income"])
def test_other_columns_may_repeat_a_name_or_have_none(header: bytes) -> None:
    table = read_csv(header + b"\r\nA,B,35,f,1\r\n", LIMIT)

    rows = table.rows(CUSTOMER_NEEDS)

    assert rows.columns == {"age": ["35"], "gender": ["f"], "income": ["1"]}
    assert encode_table(table, {}) == header + b"\r\nA,B,35,f,1\r\n"


@pytest.mark.parametrize("row", [b"35,f", b"35,f,52000,extra", b"35"])
def test_ragged_rows_are_a_bad_request_naming_the_row_and_its_line(row: bytes) -> None:
    body = HEADER + b"36,m,1\r\n\r\n" + row + b"\r\n"

    with pytest.raises(BadRequest, match=r"CSV row 1 \(line 4\) has") as caught:
        decode_csv(body, LIMIT)

    assert [(p.row, p.line) for p in caught.value.problems] == [(1, 4)]


def test_csv_that_is_not_utf8_is_a_bad_request() -> None:
    body = "age,gender,income\r\n35,männlich,1\r\n".encode("latin-1")

    with pytest.raises(BadRequest, match=r"not UTF-8 text \(invalid bytes near line 2\)"):
        decode_csv(body, LIMIT)


@pytest.mark.parametrize("body", [b"", b"\xef\xbb\xbf", b"\r\n", b"\n\r\n\r"])
def test_an_empty_csv_body_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest, match="the CSV is empty"):
        decode_csv(body, LIMIT)


def test_blank_lines_before_the_header_are_skipped_and_counted_as_lines() -> None:
    table = read_csv(b"\r\n\r\n" + HEADER + b"35,f,1\r\n", LIMIT)

    assert table.header == ["age", "gender", "income"]
    assert table.with_lines([Problem(0, "age", "x")]) == (Problem(0, "age", "x", line=4),)


def test_a_broken_quote_in_a_data_row_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match=r"cannot be read at line 3: .* quote"):
        decode_csv(HEADER + b'35,f,1\r\n"36"x,m,1\r\n', LIMIT)


def test_a_broken_quote_in_the_header_is_a_bad_request() -> None:
    with pytest.raises(BadRequest, match="cannot be read at line 1"):
        decode_csv(b'"age"x,gender,income\r\n35,f,1\r\n', LIMIT)


def test_more_csv_rows_than_allowed_is_payload_too_large() -> None:
    body = HEADER + b"35,f,1\r\n" * 4

    with pytest.raises(PayloadTooLarge, match="at most 3 instances"):
        decode_csv(body, max_instances=3)


def test_blank_lines_do_not_count_against_the_row_limit() -> None:
    body = HEADER + b"35,f,1\r\n\r\n\r\n" * 3

    assert len(decode_csv(body, max_instances=3).rows) == 3


# encode


def test_encode_table_writes_a_header_and_crlf_rows_with_the_columns_added() -> None:
    table = read_csv(b"age\n35\n", LIMIT)

    encoded = encode_table(table, {"purchase_amount": np.array([812.5])})

    assert encoded == b"age,purchase_amount\r\n35,812.5\r\n"


def test_encode_csv_round_trips_through_decode_csv() -> None:
    frame = pd.DataFrame(
        {
            "note": ["line one\nline two", 'say "hi", then go', "", " padded "],
            "gender": ["f", "m", "x", "ü"],
        }
    )

    decoded = decode_csv(encode_csv(frame), LIMIT).rows

    pd.testing.assert_frame_equal(decoded, frame.astype(object))


CELL = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)
NAME = CELL.filter(lambda name: name.strip() != "")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(NAME, min_size=1, max_size=4, unique=True).flatmap(
        lambda names: st.tuples(
            st.just(names),
            st.lists(st.lists(CELL, min_size=len(names), max_size=len(names)), max_size=5),
        )
    )
)
def test_property_encode_csv_round_trips_any_text(
    table: tuple[list[str], list[list[str]]],
) -> None:
    names, cells = table
    frame = pd.DataFrame(cells, columns=names, dtype=object)

    decoded = decode_csv(encode_csv(frame), LIMIT).rows

    assert list(decoded.columns) == names
    assert decoded.to_numpy().tolist() == cells


def test_encode_json_serialises_numpy_values() -> None:
    document = {"predictions": np.array([1.5, 2.0]), "count": np.int64(2)}

    assert orjson.loads(encode_json(document)) == {"predictions": [1.5, 2.0], "count": 2}


# cells, and what a prediction is laid out as


def test_cell_texts_write_floats_as_float_texts_text_as_is_and_missing_values_empty() -> None:
    floats = np.array([812.5, 1e-7, 3.0])

    assert cell_texts(floats) == float_texts(floats)
    assert cell_texts([812.5, None, 0.1]) == ["812.5", "", "0.1"]
    assert cell_texts(np.array([812.5, np.nan])) == ["812.5", ""]
    assert cell_texts(["", "income", "age;income"]) == ["", "income", "age;income"]
    assert cell_texts(np.array(["income", ""], dtype=object)) == ["income", ""]
    assert [float(text) for text in cell_texts(np.array([0.1, np.nan, 2 / 3]))[::2]] == [
        0.1,
        2 / 3,
    ]


def prediction_of(values: Any, lower: Any, upper: Any, outside: dict[str, Any]) -> Prediction:
    """A prediction of two customers, the second outside the training range by income."""
    count = len(values)
    return Prediction(
        CUSTOMER_NEEDS,
        list(range(count)),
        values,
        interval=Interval(0.9, lower, upper),
        options=Options(interval=0.9),
        outside=Outside(count, outside),
    )


BY_LIST = prediction_of([812.5, 900.0], [700.0, None], [925.0, None], {"income": [False, True]})
BY_ARRAY = prediction_of(
    np.array([812.5, 900.0]),
    np.array([700.0, np.nan]),
    np.array([925.0, np.nan]),
    {"income": np.array([False, True])},
)


def test_output_columns_put_the_outside_flags_after_the_bounds_and_before_explanations() -> None:
    assert output_columns(CUSTOMER_NEEDS, Options()) == ["purchase_amount", OUTSIDE]
    assert output_columns(CUSTOMER_NEEDS) == [
        "purchase_amount",
        "purchase_amount_lower",
        "purchase_amount_upper",
        OUTSIDE,
        "base_value",
        "contribution_age",
        "contribution_gender",
        "contribution_income",
    ]


@pytest.mark.parametrize("prediction", [BY_LIST, BY_ARRAY], ids=["list", "array"])
def test_a_withheld_interval_is_an_empty_csv_cell(prediction: Prediction) -> None:
    table = read_csv(b"id\nA\nB\n", LIMIT)

    encoded = encode_table(table, prediction.columns())

    assert encoded == (
        b"id,purchase_amount,purchase_amount_lower,purchase_amount_upper,outside_training_range"
        b"\r\nA,812.5,700.0,925.0,\r\nB,900.0,,,income\r\n"
    )


@pytest.mark.parametrize("prediction", [BY_LIST, BY_ARRAY], ids=["list", "array"])
def test_a_withheld_interval_is_a_json_object_without_bounds(prediction: Prediction) -> None:
    answer = orjson.loads(encode_json(json_answer(prediction)))

    assert answer == {
        "predictions": [
            {
                "purchase_amount": 812.5,
                "interval": {"level": 0.9, "lower": 700.0, "upper": 925.0},
                OUTSIDE: [],
            },
            {
                "purchase_amount": 900.0,
                "interval": {
                    "level": 0.9,
                    "lower": None,
                    "upper": None,
                    "withheld": "outside the training range: not calibrated there",
                },
                OUTSIDE: ["income"],
            },
        ]
    }


def test_bare_json_predictions_carry_the_outside_flags_beside_them() -> None:
    prediction = dataclasses.replace(BY_ARRAY, interval=None, options=Options())

    answer = orjson.loads(encode_json(json_answer(prediction)))

    assert answer == {"predictions": [812.5, 900.0], OUTSIDE: [[], ["income"]]}


def test_a_prediction_without_flags_names_no_feature_outside() -> None:
    prediction = Prediction(CUSTOMER_NEEDS, [0, 1], [1.0, 2.0])

    assert json_answer(prediction) == {"predictions": [1.0, 2.0], OUTSIDE: [[], []]}
    assert prediction.columns()[OUTSIDE] == ["", ""]


def test_several_features_outside_are_joined_in_schema_order() -> None:
    outside = Outside(2, {"age": [True, False], "income": [True, True]})

    assert outside.names() == [["age", "income"], ["income"]]
    assert outside.texts() == ["age;income", "income"]
    assert outside.counts() == {"age": 1, "income": 2}
    assert outside.any() == [True, True]
    assert outside.keep([False, True]).names() == [["income"]]


@pytest.mark.parametrize("prediction", [BY_LIST, BY_ARRAY], ids=["list", "array"])
def test_open_inference_outputs_a_bytes_tensor_of_flags_and_null_withheld_bounds(
    prediction: Prediction,
) -> None:
    body = orjson.loads(encode_json(encode_infer(prediction, "customer_needs", "v1", None, None)))

    tensors = {tensor["name"]: tensor for tensor in body["outputs"]}
    assert list(tensors) == output_columns(CUSTOMER_NEEDS, Options(interval=0.9))
    assert tensors[OUTSIDE] == {
        "name": OUTSIDE,
        "shape": [2],
        "datatype": "BYTES",
        "data": ["", "income"],
    }
    assert tensors["purchase_amount_lower"]["data"] == [700.0, None]
    assert tensors["purchase_amount_upper"]["datatype"] == "FP64"


def test_open_inference_metadata_lists_the_flags_as_a_bytes_output() -> None:
    outputs = model_metadata(CUSTOMER_NEEDS, "customer_needs", "v1")["outputs"]

    assert [o["name"] for o in outputs] == output_columns(CUSTOMER_NEEDS)
    assert {o["name"]: o["datatype"] for o in outputs}[OUTSIDE] == "BYTES"
