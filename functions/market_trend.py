"""HTTP function `predict_market_trend`: sales, population, gdp -> future_sales."""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from functions.http import serve
from shared.schema import MODELS


@functions_framework.aio.http
async def predict_market_trend(request: Request) -> Response:
    """Predict next quarter's sales from this quarter's sales, population and GDP.

    POST JSON `{"instances": [{"sales": 9000, "population": 300000, "gdp": 13000}]}` or CSV;
    GET returns the model card. Errors are JSON with the status they deserve.
    """
    return await serve(request, MODELS["market_trend"])
