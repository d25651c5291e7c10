"""The floors for the HTTP part: functions-framework reading the body and answering a constant,
on each of its two stacks.

    functions-framework --source bench/constant_handler.py --target constant        (default)
    functions-framework --source bench/constant_handler.py --target constant_asgi   (ASGI)

`constant` is the default stack (gunicorn's threaded worker, Flask); `constant_asgi` is the one
our HTTP functions run on (gunicorn with uvicorn's worker, Starlette).
"""

from __future__ import annotations

from typing import Any

import functions_framework
import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

ANSWER = b'{"predictions":[0.0]}'


@functions_framework.http
def constant(request: Any) -> dict[str, list[float]]:
    request.get_data()  # received in full, as a handler that uses it would
    return {"predictions": [0.0]}


@functions_framework.aio.http
async def constant_asgi(request: Request) -> Response:
    await request.body()  # received in full, as a handler that uses it would
    return Response(ANSWER, media_type="application/json")
