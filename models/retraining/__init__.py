"""Retraining on uploaded data: a challenger trained on an upload, gated, and promoted or not.

Layout of the data bucket (everything outside `training/` is ignored, so a run never triggers
itself, and files uploaded for scoring under `incoming/` never start a training):

    training/<model>/<path>        labelled data: <path> ends in .csv or .csv.gz (any case) and
                                   may have folders; the model's feature columns and its target,
                                   as `python -m models train --data` reads them
    retraining/<model>/<path>/<generation>/
        claim-<n>.json             attempt n at this run, created (never overwritten) before
                                   training, so one delivery at a time trains. A claim older than
                                   RETRAIN_CLAIM_SECONDS belongs to an attempt that died; the next
                                   delivery takes over with claim n+1.
        report.json                what the run did and why; created once, last: its presence
                                   means the run is over and a redelivered event does nothing

The gates a challenger must pass, each reported with its numbers:

    schema       the challenger's feature schema equals the current model's
    finite       every challenger prediction on the evaluation rows is a finite number
    improvement  challenger RMSE <= current RMSE * (1 - RETRAIN_MIN_IMPROVEMENT)
    coverage     the challenger's 90% intervals cover 90% (+- RETRAIN_COVERAGE_TOLERANCE) of them,
                 and the worst decile or category with 200 rows at least 90% minus
                 RETRAIN_GROUP_COVERAGE_TOLERANCE

    claims      which upload an event names, where its run writes, and claiming the run
    reading     the upload's bytes, capped at RETRAIN_MAX_ROWS data lines, and its columns
    challenger  the challenger, trained as `python -m models train` trains, and both measured
    lineage     what a version was trained on, read back for RETRAIN_JOIN_CURRENT, and what a
                new version records
    gates       the gates, what they demand, and the decision
    report      what a run found out, as report.json says it
    run         one run, from the claim to the report

Storage and the model store are reached only through the ObjectStore and Backend handed to
`retrain`; reading, challenger, gates and report never talk to them.
"""

from __future__ import annotations

from models.retraining.claims import ClaimHeld, TrainingUpload, parse_event, run_names
from models.retraining.gates import Policy
from models.retraining.run import retrain

__all__ = ["ClaimHeld", "Policy", "TrainingUpload", "parse_event", "retrain", "run_names"]
