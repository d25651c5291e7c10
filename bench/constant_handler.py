"""The floor for the HTTP part: functions-framework reading the body and answering a constant.

functions-framework --source bench/constant_handler.py --target constant
"""

from __future__ import annotations

from typing import Any

import functions_framework


@functions_framework.http
def constant(request: Any) -> dict[str, list[float]]:
    request.get_data()  # received in full, as a handler that uses it would
    return {"predictions": [0.0]}
