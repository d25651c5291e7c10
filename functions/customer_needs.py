"""HTTP function `predict_customer_needs`: age, gender, income -> purchase_amount."""

from __future__ import annotations

import flask
import functions_framework

from functions.http import serve
from shared.schema import MODELS


@functions_framework.http
def predict_customer_needs(request: flask.Request) -> flask.Response:
    """Predict a customer's yearly purchase amount.

    POST JSON `{"instances": [{"age": 35, "gender": "female", "income": 52000}]}` or CSV;
    GET returns the model card. Errors are JSON with the status they deserve.
    """
    return serve(request, MODELS["customer_needs"])
