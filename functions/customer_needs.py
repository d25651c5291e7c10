"""HTTP function `predict_customer_needs`: age, gender, income -> purchase_amount."""

from __future__ import annotations

import functions_framework.aio
from starlette.requests import Request
from starlette.responses import Response

from functions.http import serve
from shared.schema import MODELS


@functions_framework.aio.http
async def predict_customer_needs(request: Request) -> Response:
    """Predict a customer's yearly purchase amount.

    POST JSON `{"instances": [{"age": 35, "gender": "female", "income": 52000}]}` or CSV;
    GET returns the model card. Errors are JSON with the status they deserve.
    """
    return await serve(request, MODELS["customer_needs"])
