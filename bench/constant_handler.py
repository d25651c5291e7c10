"""The floor for the HTTP part: functions-framework answering a constant, nothing imported.

functions-framework --source bench/constant_handler.py --target constant
"""

from __future__ import annotations

import functions_framework


@functions_framework.http
def constant(request: object) -> dict[str, list[float]]:
    return {"predictions": [0.0]}
