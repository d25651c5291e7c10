"""Event function `retrain_on_upload`: retrains a model on labelled data uploaded to a bucket.

Triggered by `google.cloud.storage.object.v1.finalized`, whose CloudEvents it reads itself (see
functions/events.py for every answer a delivery gets); the bucket layout and the gates are
described in `models.retraining`. Events arrive at least once, sometimes concurrently, and each
upload generation is trained on at most once:

1. report.json already there: the run is over; nothing else happens.
2. The delivery that creates the claim (create-only) trains. Another delivery that finds a live
   claim answers 500, so the platform delivers it again later, when the report is there. A
   claim older than RETRAIN_CLAIM_SECONDS was left by an attempt that died: the next claim
   takes over, and after MAX_ATTEMPTS dead attempts the run is refused with a report.
3. current.json's generation is read before anything else, then the current model. The upload
   is read (refused past RETRAIN_MAX_ROWS lines, before any training), joined with the current
   model's training data if so configured, and the challenger is trained and measured next to
   the current model on the same held-out rows.
4. Only if every gate passes is the version uploaded and current.json moved, from the
   generation read in step 3: if anyone moved it meanwhile, this run is not promoted.
5. report.json is created last, and one log line tells the outcome.

Bad data is reported and the event acknowledged; storage and model store failures answer 500, so
the event is delivered again.
"""

from __future__ import annotations

from datetime import datetime

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from functions.events import Edge, Runtime, Wording, deliver
from models.retraining import ClaimHeld, Policy, TrainingUpload, parse_event, retrain, run_names

WORDING = Wording(
    too_old="event too old; dropped without training",
    already_done="upload already retrained on; nothing to do",
    retried="retraining not finished; the event will be retried",
)
TRAINING = Edge(parse_event, lambda upload: run_names(upload).report, WORDING, (ClaimHeld,))


@functions_framework.aio.http
async def retrain_on_upload(request: Request) -> Response:
    """Train a challenger on training/<model>/<path>, gate it, and promote it or say why not.

    Answers 200 (acknowledging the event) when the object is not training data, the event is
    too old, the run is already over, or its report was written; 500 when storage or the model
    store fails, or another delivery is training on the same upload: the event comes again; a
    JSON 4xx to a request that is not a CloudEvent.
    """
    return await deliver(request, TRAINING, _retrain)


def _retrain(upload: TrainingUpload, runtime: Runtime, started: datetime) -> None:
    policy = Policy.from_settings(runtime.settings)
    retrain(upload, started, runtime.models.backend, runtime.objects, policy)
