"""Every environment variable the functions read, parsed once into a value object.

| variable | meaning | default |
| --- | --- | --- |
| MODEL_STORE | local folder or gs://bucket/prefix holding the models | the repository's models/ |
| CORS_ALLOWED_ORIGINS | comma-separated origins allowed to call from browsers; `*` for any | none |
| MAX_BODY_BYTES | largest request body accepted | 10 MiB |
| MAX_INSTANCES | most rows accepted in one request | 100000 |
| MODEL_REFRESH_SECONDS | how often current.json is checked for a new version | 60 |
| STORAGE_TIMEOUT_SECONDS | total time allowed for one model store read, retries included | 5 |
| GOOGLE_CLOUD_PROJECT | project id, used to link log lines to traces | unset |
| STORAGE_EMULATOR_HOST | a Cloud Storage emulator to use instead of the real service | unset |
| MAX_EVENT_AGE_SECONDS | upload events older than this are dropped, not scored | 86400 |
| UPLOAD_CHUNK_ROWS | rows of an upload scored (and held in memory) at a time | 50000 |
| UPLOAD_INTERVAL_LEVEL | prediction interval level (0 to 1) added to scored uploads | unset |
| UPLOAD_STRICT | reject uploaded rows outside the training range instead of flagging them | false |
| RETRAIN_JOIN_CURRENT | train on the uploaded rows plus the current model's training data | false |
| RETRAIN_MIN_IMPROVEMENT | held-out RMSE must fall by this share of the current model's | 0.02 |
| RETRAIN_COVERAGE_TOLERANCE | allowed gap between 90% and the 90% intervals' coverage | 0.05 |
| RETRAIN_GROUP_COVERAGE_TOLERANCE | allowed shortfall of the worst decile or category | 0.05 |
| RETRAIN_EXCLUDE_FEATURES | comma-separated features retrained models must not use | none |
| RETRAIN_MAX_ROWS | most data lines one retraining run takes (joined rows included) | 4000000 |
| RETRAIN_CLAIM_SECONDS | a retraining run unfinished after this long may be taken over | 600 |
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", int, float)

DEFAULT_MODEL_STORE = str(Path(__file__).resolve().parent.parent / "models")


class SettingsError(ValueError):
    """A setting has a value that cannot be used; raised when settings are read."""


@dataclass(frozen=True)
class Settings:
    model_store: str = DEFAULT_MODEL_STORE
    cors_allowed_origins: tuple[str, ...] = ()
    max_body_bytes: int = 10 * 1024 * 1024
    max_instances: int = 100_000
    model_refresh_seconds: float = 60.0
    storage_timeout_seconds: float = 5.0
    project: str | None = None
    storage_emulator_host: str | None = None
    max_event_age_seconds: float = 86_400.0
    upload_chunk_rows: int = 50_000
    upload_interval_level: float | None = None
    upload_strict: bool = False
    retrain_join_current: bool = False
    retrain_min_improvement: float = 0.02
    retrain_coverage_tolerance: float = 0.05
    retrain_group_coverage_tolerance: float = 0.05
    retrain_exclude_features: tuple[str, ...] = ()
    retrain_max_rows: int = 4_000_000
    retrain_claim_seconds: float = 600.0


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    return Settings(
        model_store=env.get("MODEL_STORE") or DEFAULT_MODEL_STORE,
        cors_allowed_origins=_origins(env.get("CORS_ALLOWED_ORIGINS", "")),
        max_body_bytes=_positive(env, "MAX_BODY_BYTES", Settings.max_body_bytes, int),
        max_instances=_positive(env, "MAX_INSTANCES", Settings.max_instances, int),
        model_refresh_seconds=_positive(
            env, "MODEL_REFRESH_SECONDS", Settings.model_refresh_seconds, float
        ),
        storage_timeout_seconds=_positive(
            env, "STORAGE_TIMEOUT_SECONDS", Settings.storage_timeout_seconds, float
        ),
        project=env.get("GOOGLE_CLOUD_PROJECT") or None,
        storage_emulator_host=env.get("STORAGE_EMULATOR_HOST") or None,
        max_event_age_seconds=_positive(
            env, "MAX_EVENT_AGE_SECONDS", Settings.max_event_age_seconds, float
        ),
        upload_chunk_rows=_positive(env, "UPLOAD_CHUNK_ROWS", Settings.upload_chunk_rows, int),
        upload_interval_level=_level(env, "UPLOAD_INTERVAL_LEVEL"),
        upload_strict=_flag(env, "UPLOAD_STRICT", Settings.upload_strict),
        retrain_join_current=_flag(env, "RETRAIN_JOIN_CURRENT", Settings.retrain_join_current),
        retrain_min_improvement=_share(
            env, "RETRAIN_MIN_IMPROVEMENT", Settings.retrain_min_improvement
        ),
        retrain_coverage_tolerance=_share(
            env, "RETRAIN_COVERAGE_TOLERANCE", Settings.retrain_coverage_tolerance
        ),
        retrain_group_coverage_tolerance=_share(
            env, "RETRAIN_GROUP_COVERAGE_TOLERANCE", Settings.retrain_group_coverage_tolerance
        ),
        retrain_exclude_features=_names(env.get("RETRAIN_EXCLUDE_FEATURES", "")),
        retrain_max_rows=_positive(env, "RETRAIN_MAX_ROWS", Settings.retrain_max_rows, int),
        retrain_claim_seconds=_positive(
            env, "RETRAIN_CLAIM_SECONDS", Settings.retrain_claim_seconds, float
        ),
    )


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(origin.strip().rstrip("/") for origin in raw.split(",") if origin.strip())


def _names(raw: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in raw.split(",") if name.strip())


def _positive(env: Mapping[str, str], name: str, default: T, kind: type[T]) -> T:
    value: T = _number(env, name, default, kind, _is_positive, "a positive number")
    return value


def _level(env: Mapping[str, str], name: str) -> float | None:
    """A probability strictly between 0 and 1, or None when unset."""
    level: float | None = _number(env, name, None, float, _is_level, "a number between 0 and 1")
    return level


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    """A share from 0 (inclusive) to 1 (exclusive)."""
    share: float = _number(env, name, default, float, _is_share, "a number from 0 to below 1")
    return share


def _number(
    env: Mapping[str, str],
    name: str,
    default: Any,
    kind: Callable[[str], Any],
    accepted: Callable[[Any], bool],
    requirement: str,
) -> Any:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be {requirement}, got {raw!r}") from exc
    if not accepted(value):
        raise SettingsError(f"{name} must be {requirement}, got {raw!r}")
    return value


def _is_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _is_level(value: float) -> bool:
    return 0 < value < 1  # also refuses NaN


def _is_share(value: float) -> bool:
    return 0 <= value < 1  # also refuses NaN


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"true", "1", "yes"}:
        return True
    if value in {"false", "0", "no"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")
