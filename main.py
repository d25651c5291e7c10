"""Entry points, as Cloud Functions and `functions-framework --target NAME` load them."""

from functions.customer_needs import predict_customer_needs
from functions.market_trend import predict_market_trend
from functions.score_upload import score_upload as score_upload

__all__ = ["predict_customer_needs", "predict_market_trend"]
