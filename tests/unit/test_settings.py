from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import DEFAULT_MODEL_STORE, Settings, SettingsError, from_env

REPOSITORY = Path(__file__).resolve().parents[2]


def test_defaults_when_nothing_is_set() -> None:
    settings = from_env({})

    assert settings == Settings(
        model_store=str(REPOSITORY / "models"),
        cors_allowed_origins=(),
        max_body_bytes=10 * 1024 * 1024,
        max_instances=100_000,
        model_refresh_seconds=60.0,
        storage_timeout_seconds=5.0,
        project=None,
        storage_emulator_host=None,
        max_event_age_seconds=86_400.0,
        upload_chunk_rows=50_000,
        upload_interval_level=None,
        upload_strict=False,
        retrain_group_coverage_tolerance=0.05,
        retrain_exclude_features=(),
    )
    assert str(REPOSITORY / "models") == DEFAULT_MODEL_STORE


def test_empty_values_mean_the_default() -> None:
    environ = {
        name: ""
        for name in (
            "MODEL_STORE",
            "CORS_ALLOWED_ORIGINS",
            "MAX_BODY_BYTES",
            "MAX_INSTANCES",
            "MODEL_REFRESH_SECONDS",
            "STORAGE_TIMEOUT_SECONDS",
            "GOOGLE_CLOUD_PROJECT",
            "STORAGE_EMULATOR_HOST",
            "MAX_EVENT_AGE_SECONDS",
            "UPLOAD_CHUNK_ROWS",
            "UPLOAD_INTERVAL_LEVEL",
            "UPLOAD_STRICT",
            "RETRAIN_GROUP_COVERAGE_TOLERANCE",
            "RETRAIN_EXCLUDE_FEATURES",
        )
    }
    environ["MAX_INSTANCES"] = "  "

    assert from_env(environ) == Settings()


def test_every_variable_is_parsed() -> None:
    environ = {
        "MODEL_STORE": "gs://bucket/prefix",
        "CORS_ALLOWED_ORIGINS": "https://app.example.com",
        "MAX_BODY_BYTES": "2048",
        "MAX_INSTANCES": " 50 ",
        "MODEL_REFRESH_SECONDS": "0.5",
        "STORAGE_TIMEOUT_SECONDS": "2",
        "GOOGLE_CLOUD_PROJECT": "my-project",
        "STORAGE_EMULATOR_HOST": "http://localhost:4443",
        "MAX_EVENT_AGE_SECONDS": "3600",
        "UPLOAD_CHUNK_ROWS": "1000",
        "UPLOAD_INTERVAL_LEVEL": " 0.9 ",
        "UPLOAD_STRICT": "yes",
        "RETRAIN_GROUP_COVERAGE_TOLERANCE": "0.1",
        "RETRAIN_EXCLUDE_FEATURES": "gender",
    }

    settings = from_env(environ)

    assert settings == Settings(
        model_store="gs://bucket/prefix",
        cors_allowed_origins=("https://app.example.com",),
        max_body_bytes=2048,
        max_instances=50,
        model_refresh_seconds=0.5,
        storage_timeout_seconds=2.0,
        project="my-project",
        storage_emulator_host="http://localhost:4443",
        max_event_age_seconds=3600.0,
        upload_chunk_rows=1000,
        upload_interval_level=0.9,
        upload_strict=True,
        retrain_group_coverage_tolerance=0.1,
        retrain_exclude_features=("gender",),
    )
    assert type(settings.max_body_bytes) is int
    assert type(settings.storage_timeout_seconds) is float


def test_cors_origins_are_trimmed_and_empty_entries_dropped() -> None:
    settings = from_env(
        {"CORS_ALLOWED_ORIGINS": " https://a.example.com/ ,https://b.example.com:8443,, ,"}
    )

    assert settings.cors_allowed_origins == ("https://a.example.com", "https://b.example.com:8443")


def test_cors_wildcard() -> None:
    assert from_env({"CORS_ALLOWED_ORIGINS": "*"}).cors_allowed_origins == ("*",)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_BODY_BYTES", "ten"),
        ("MAX_BODY_BYTES", "1.5"),
        ("MAX_BODY_BYTES", "0"),
        ("MAX_BODY_BYTES", "-1"),
        ("MAX_INSTANCES", "1e5"),
        ("MAX_INSTANCES", "-100"),
        ("MODEL_REFRESH_SECONDS", "1m"),
        ("MODEL_REFRESH_SECONDS", "0"),
        ("MODEL_REFRESH_SECONDS", "-0.1"),
        ("MODEL_REFRESH_SECONDS", "nan"),
        ("STORAGE_TIMEOUT_SECONDS", "soon"),
        ("STORAGE_TIMEOUT_SECONDS", "0.0"),
        ("STORAGE_TIMEOUT_SECONDS", "NaN"),
        ("MAX_EVENT_AGE_SECONDS", "a day"),
        ("MAX_EVENT_AGE_SECONDS", "0"),
        ("UPLOAD_CHUNK_ROWS", "0"),
        ("UPLOAD_CHUNK_ROWS", "5e4"),
    ],
)
def test_a_bad_value_raises_settings_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} must be a positive number, got {value!r}$"):
        from_env({name: value})


@pytest.mark.parametrize("value", ["0", "1", "0.0", "1.0", "90", "-0.5", "nan", "ninety"])
def test_a_bad_upload_interval_level_raises_settings_error(value: str) -> None:
    expected = f"^UPLOAD_INTERVAL_LEVEL must be a number between 0 and 1, got {value!r}$"

    with pytest.raises(SettingsError, match=expected):
        from_env({"UPLOAD_INTERVAL_LEVEL": value})


@pytest.mark.parametrize(
    ("value", "strict"),
    [("true", True), (" TRUE ", True), ("1", True), ("no", False), ("0", False), ("False", False)],
)
def test_upload_strict_is_a_flag(value: str, strict: bool) -> None:
    assert from_env({"UPLOAD_STRICT": value}).upload_strict is strict


@pytest.mark.parametrize("value", ["maybe", "on", "2", "strict"])
def test_a_bad_upload_strict_raises_settings_error(value: str) -> None:
    with pytest.raises(
        SettingsError, match=f"^UPLOAD_STRICT must be true or false, got {value!r}$"
    ):
        from_env({"UPLOAD_STRICT": value})


@pytest.mark.parametrize(
    ("raw", "names"),
    [("gender", ("gender",)), (" gender , age ", ("gender", "age")), (",,", ()), ("", ())],
)
def test_excluded_features_are_a_comma_separated_list(raw: str, names: tuple[str, ...]) -> None:
    assert from_env({"RETRAIN_EXCLUDE_FEATURES": raw}).retrain_exclude_features == names


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_the_process_environment_is_read_when_no_mapping_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MAX_INSTANCES", "7")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "from-the-process")

    settings = from_env()

    assert settings.max_instances == 7
    assert settings.project == "from-the-process"
