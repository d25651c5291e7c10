"""Every field of a finalized event, of any JSON type or missing, gets an answer: the upload it
names, or a reason to ignore it that names the field and holds nothing the field held."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.retraining import parse_event as training_event
from shared.uploads import FINALIZED, Ignored, Upload
from shared.uploads import parse_event as scoring_event

Parse = Callable[[Mapping[str, Any], object], Upload | Ignored]
PARSERS: dict[str, tuple[Parse, str]] = {  # each parser, and the folder of its uploads
    "scoring": (scoring_event, "incoming/customer_needs/"),
    "training": (training_event, "training/customer_needs/"),
}
FOLDER = "<folder>/"  # in a name below: the folder of the parser's uploads
ATTRIBUTES = ("type", "id", "time")
MISSING = object()


def event(folder: str, **changes: object) -> tuple[dict[str, object], dict[str, object]]:
    """A finalized event for an upload in `folder`, with fields changed (or removed, given
    MISSING)."""
    attributes: dict[str, object] = {"type": FINALIZED, "id": "e-1", "time": "2026-11-28T11:00:00Z"}
    data: dict[str, object] = {
        "bucket": "uploads",
        "name": f"{folder}crm/q1.csv",
        "generation": "1700",
    }
    for key, value in changes.items():
        if isinstance(value, str):
            value = value.replace(FOLDER, folder)
        fields = attributes if key in ATTRIBUTES else data
        if value is MISSING:
            del fields[key]
        else:
            fields[key] = value
    return attributes, data


MALFORMED = [
    ("generation", "²"),
    ("generation", "\u0661\u0667\u0660\u0660"),  # Arabic-Indic 1700: int() takes it, Storage never
    ("generation", "\uff11\uff17"),  # fullwidth 17
    ("generation", "9" * 5000),  # int() refuses more than 4,300 digits
    ("generation", str(2**63)),
    ("generation", 2**63),
    ("generation", 10**400),
    ("generation", "0"),
    ("generation", 0),
    ("generation", -17),
    ("generation", "-17"),
    ("generation", "+17"),
    ("generation", " 17"),
    ("generation", "17\n"),
    ("generation", "1_700"),
    ("generation", "0017"),
    ("generation", ""),
    ("generation", True),
    ("generation", 1700.0),
    ("generation", float("nan")),
    ("generation", None),
    ("generation", [1700]),
    ("generation", MISSING),
    ("bucket", ""),
    ("bucket", "ab"),
    ("bucket", "a" * 64),
    ("bucket", "Uploads"),
    ("bucket", "-uploads"),
    ("bucket", "uploads-"),
    ("bucket", "up..loads"),
    ("bucket", "192.168.0.1"),
    ("bucket", "bücket"),
    ("bucket", "uploads\n"),
    ("bucket", 5),
    ("bucket", {"name": "uploads"}),
    ("bucket", MISSING),
    ("name", ""),
    ("name", f"{FOLDER}\ud800.csv"),  # a lone surrogate: not UTF-8
    ("name", f"{FOLDER}a\nb.csv"),
    ("name", f"{FOLDER}a\rb.csv"),
    ("name", f"{FOLDER}a\x00b.csv"),
    ("name", FOLDER + "é" * 500 + ".csv"),  # past 1,024 bytes in fewer characters
    ("name", 5),
    ("name", [f"{FOLDER}q1.csv"]),
    ("name", None),
    ("name", MISSING),
    ("id", ""),
    ("id", "e" * 257),
    ("id", "e-\x00-1"),
    ("id", "e-\ud800"),
    ("id", 5),
    ("id", None),
    ("id", {"id": "e-1"}),
    ("id", MISSING),
    ("type", "google.cloud.storage.object.v1.deleted"),
    ("type", ""),
    ("type", 5),
    ("type", [FINALIZED]),
    ("type", None),
    ("type", MISSING),
]
NAMED = {
    "generation": "generation",
    "bucket": "bucket",
    "name": "object",
    "id": "id",
    "type": "type",
}


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize(("field", "value"), MALFORMED)
def test_a_malformed_or_missing_field_is_ignored_by_name(kind: str, field: str, value: object):
    parse, folder = PARSERS[kind]

    parsed = parse(*event(folder, **{field: value}))

    assert isinstance(parsed, Ignored)
    assert NAMED[field] in parsed.reason
    if isinstance(value, str) and len(value) > 2:
        assert value.replace(FOLDER, folder) not in parsed.reason


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize(
    ("generation", "expected"),
    [("1700", 1700), (1700, 1700), ("1", 1), (str(2**63 - 1), 2**63 - 1), (2**63 - 1, 2**63 - 1)],
)
def test_a_generation_is_an_int64_above_zero_as_a_string_or_a_number(
    kind: str, generation: object, expected: int
) -> None:
    parse, folder = PARSERS[kind]

    parsed = parse(*event(folder, generation=generation))

    assert isinstance(parsed, Upload)
    assert parsed.generation == expected


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize("time", ["yesterday", "", 5, None, ["2026-11-28T11:00:00Z"], MISSING])
def test_an_unreadable_time_is_an_upload_without_a_time(kind: str, time: object) -> None:
    parse, folder = PARSERS[kind]

    parsed = parse(*event(folder, time=time))

    assert isinstance(parsed, Upload)
    assert parsed.event_time is None


@pytest.mark.parametrize("kind", PARSERS)
@pytest.mark.parametrize("data", [None, "", "uploads", 5, [1], True])
def test_data_that_is_not_an_object_is_ignored(kind: str, data: object) -> None:
    parse, folder = PARSERS[kind]

    parsed = parse(event(folder)[0], data)

    assert isinstance(parsed, Ignored)
    assert "data" in parsed.reason


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
FIELD = st.one_of(
    JSON,
    st.just(MISSING),
    st.sampled_from(["²", "9" * 5000, "", "\ud800", FINALIZED, "uploads", "1700"]),
)


@pytest.mark.parametrize("kind", PARSERS)
@settings(max_examples=300, deadline=None)
@given(fields=st.fixed_dictionaries({key: FIELD for key in ("generation", "bucket", "name", "id")}))
def test_any_json_in_any_field_gets_an_answer(kind: str, fields: dict[str, object]) -> None:
    parse, folder = PARSERS[kind]

    parsed = parse(*event(folder, **fields))

    assert isinstance(parsed, Upload | Ignored)
    held = [value for value in fields.values() if isinstance(value, str) and len(value) > 8]
    assert not isinstance(parsed, Ignored) or all(value not in parsed.reason for value in held)
