"""What one run found out, and the report.json that says it: the decision, and for a refusal
the code and the decision it leads to. Nothing here talks to storage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from models.retraining.claims import TrainingUpload
from models.retraining.gates import Evaluation, Gate, Policy, failed
from shared.uploads import FileProblem

PROMOTED = "promoted"
PROMOTED_EARLIER = "promoted (by an earlier attempt at this file)"
PUBLISHED_MEANWHILE = "not promoted: another version was published meanwhile"

# Codes of refusals, as they appear in report.json, and the decision each one leads to; the
# codes of unreadable files, and the error that carries them all, are upload scoring's
# (shared.uploads: FileProblem).
TOO_FEW_ROWS = "too_few_rows"
UNTRAINABLE = "untrainable"
TOO_MANY_ROWS = "too_many_rows"
UNFINISHED = "unfinished_attempts"
_DECISIONS = {
    TOO_MANY_ROWS: "refused: too many rows",
    UNFINISHED: "refused: earlier attempts did not finish",
}
BAD_DATA = "refused: bad data"


def refusal_decision(problem: FileProblem) -> str:
    """The decision of a run refused with this problem: it ends with a report, no new model."""
    return _DECISIONS.get(problem.code, BAD_DATA)


@dataclass
class Outcome:
    """What one run found out, filled in as it goes; `decision` is set last."""

    decision: str = ""
    problem: FileProblem | None = None
    current: dict[str, Any] = field(default_factory=dict)
    challenger: dict[str, Any] = field(default_factory=dict)
    live_after: str | None = None
    rows: dict[str, Any] = field(default_factory=dict)
    join: dict[str, Any] | None = None
    evaluation: Evaluation | None = None
    gates: list[Gate] = field(default_factory=list)


def report(
    upload: TrainingUpload,
    outcome: Outcome,
    *,
    run: Mapping[str, Any],
    policy: Policy,
    timings: Mapping[str, Any],
) -> dict[str, Any]:
    """Everything a reader needs to see why a model went live or did not."""
    evaluation = outcome.evaluation
    return {
        "decision": outcome.decision,
        "promoted": outcome.decision in (PROMOTED, PROMOTED_EARLIER),
        "failed_gates": failed(outcome.gates),
        "problem": None
        if outcome.problem is None
        else {"code": outcome.problem.code, "message": outcome.problem.message},
        "run": dict(run),
        "event": {
            "id": upload.event_id,
            "time": upload.event_time.isoformat() if upload.event_time else None,
        },
        "input": upload.reference,
        "model": {
            "name": upload.model,
            "current": outcome.current or None,
            "challenger": outcome.challenger or None,
            "live_after": outcome.live_after,
        },
        "rows": outcome.rows,
        "join": outcome.join,
        "metrics": None
        if evaluation is None
        else {
            "evaluation_rows": evaluation.rows,
            "challenger": evaluation.challenger.to_dict(),
            "current": None if evaluation.current is None else evaluation.current.to_dict(),
        },
        "gates": [gate.to_dict() for gate in outcome.gates],
        "settings": policy.to_dict(),
        "timings": dict(timings),
    }
