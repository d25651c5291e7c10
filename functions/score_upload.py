"""Event function `score_upload`: scores CSV files uploaded to a bucket.

Triggered by `google.cloud.storage.object.v1.finalized`, whose CloudEvents it reads itself (see
functions/events.py for every answer a delivery gets); the bucket layout is described in
`shared.uploads`. Events arrive at least once, sometimes concurrently, and the results
are written exactly once:

1. report.json already there: the work is done; nothing else happens.
2. The file is streamed through the model into staging objects unique to this attempt
   (resumable uploads: nothing is visible at the final names, and a crash leaves no output).
3. scored.csv and rejected.csv are published by server-side copies that only create
   (`if_generation_match=0`). Each carries the identity of what made it (model sha256,
   interval level) in its metadata; one already there with the same identity came from
   another attempt at the same work and is left as it is.
4. report.json is created last, also create-only: the first attempt's report stands and
   later attempts change nothing. Until it exists, any delivery redoes and completes the work.

Whole-file problems are reported in report.json and the event is acknowledged; storage and
model store failures answer 500, so the platform retries the event.
"""

from __future__ import annotations

from datetime import datetime

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from functions.events import Edge, Runtime, Wording, deliver
from shared.uploads import Upload, output_names, parse_event, score_file

WORDING = Wording(
    too_old="event too old; dropped without scoring",
    already_done="upload already scored; nothing to do",
    retried="upload not scored; the event will be retried",
)
SCORING = Edge(parse_event, lambda upload: output_names(upload).report, WORDING)


@functions_framework.aio.http
async def score_upload(request: Request) -> Response:
    """Score a CSV uploaded to incoming/<model>/ into results/<model>/<name>/<generation>/.

    Answers 200 (acknowledging the event) when the object is not an upload, the event is too
    old, the work was already done, or the file was scored or reported as unscorable; 500 when
    storage or the model store fails, so the event is delivered again; a JSON 4xx to a request
    that is not a CloudEvent.
    """
    return await deliver(request, SCORING, _score)


def _score(upload: Upload, runtime: Runtime, started: datetime) -> None:
    score_file(upload, started, runtime.models, runtime.objects, runtime.settings)
