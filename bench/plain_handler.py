"""The baseline every ratio in BENCHMARKS.md is measured against, and the constant floor.

`plain_predict` is what a plain functions-framework handler does: load the joblib Pipeline,
build a pandas DataFrame from the request, call `Pipeline.predict`. No validation, no model
store. The floor for the HTTP part is bench/constant_handler.py.

    functions-framework --source bench/plain_handler.py --target plain_predict
"""

from __future__ import annotations

import io
import os
import threading
from typing import Any

import flask
import functions_framework
import joblib
import pandas as pd

_model: Any = None
_lock = threading.Lock()


def _loaded() -> Any:
    global _model
    with _lock:
        if _model is None:
            _model = joblib.load(os.environ["PLAIN_MODEL_PATH"])
        return _model


@functions_framework.http
def plain_predict(request: flask.Request) -> Any:
    model = _loaded()
    if request.mimetype == "text/csv":
        frame = pd.read_csv(io.BytesIO(request.get_data()))
        frame["prediction"] = model.predict(frame)
        return flask.Response(frame.to_csv(index=False), mimetype="text/csv")
    frame = pd.DataFrame(request.get_json()["instances"])
    return {"predictions": model.predict(frame).tolist()}
