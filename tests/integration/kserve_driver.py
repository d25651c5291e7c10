"""Calls a running function with kserve's InferenceRESTClient; runs in .venv-kserve only.

Reads one JSON command on stdin and writes one JSON document on stdout:

    {"url": "http://127.0.0.1:PORT", "calls": [{"op": ..., "protocol": "v1" | "v2", ...}]}
    -> [{"result": ...} | {"error": {"type": ..., "status": int | null, "message": ...}}, ...]

ops: "server_live", "server_ready", "model_ready" (with "model"), "predict" (V1: "model",
"instances", optional "parameters", optional "key": the body's key for the rows, "instances"
or "inputs"), "infer" (V2: "model", "inputs" as [{"name", "datatype", "data"}], optional
"outputs" (names), "parameters", "id", "binary_data").

Nothing here imports the project: this interpreter has kserve's dependencies, not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from typing import Any

import httpx
import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
from kserve.protocol.infer_type import RequestedOutput


async def call(client: InferenceRESTClient, url: str, spec: dict[str, Any]) -> Any:
    op = spec["op"]
    if op == "server_live":
        return await client.is_server_live(url)
    if op == "server_ready":
        return await client.is_server_ready(url)
    if op == "model_ready":
        return await client.is_model_ready(url, spec["model"])
    if op == "predict":
        body = {spec.get("key", "instances"): spec["instances"]}
        if "parameters" in spec:
            body["parameters"] = spec["parameters"]
        return await client.infer(url, body, model_name=spec["model"])
    if op == "infer":
        headers: dict[str, str] = {}
        request = infer_request(spec)
        response = await client.infer(
            url, request, model_name=spec["model"], response_headers=headers
        )
        # The client drops the body's model_version; the version header carries it too.
        return {
            "model_name": response.model_name,
            "version_header": headers.get("x-model-version"),
            "id": response.id,
            "outputs": [
                {
                    "name": output.name,
                    "datatype": output.datatype,
                    "shape": list(output.shape),
                    "data": output.as_numpy().tolist(),
                }
                for output in response.outputs
            ],
        }
    raise ValueError(f"unknown op {op!r}")


def infer_request(spec: dict[str, Any]) -> InferRequest:
    inputs = []
    for tensor in spec["inputs"]:
        dtype = object if tensor["datatype"] == "BYTES" else np.float64
        values = np.array(tensor["data"], dtype=dtype)
        infer_input = InferInput(tensor["name"], list(values.shape), tensor["datatype"])
        infer_input.set_data_from_numpy(values, binary_data=spec.get("binary_data", False))
        inputs.append(infer_input)
    outputs = [RequestedOutput(name) for name in spec.get("outputs", [])] or None
    return InferRequest(
        spec["model"],
        inputs,
        request_id=spec.get("id"),
        parameters=spec.get("parameters"),
        request_outputs=outputs,
    )


async def run(command: dict[str, Any]) -> list[dict[str, Any]]:
    clients = {
        protocol: InferenceRESTClient(RESTConfig(protocol=protocol, timeout=60))
        for protocol in ("v1", "v2")
    }
    results: list[dict[str, Any]] = []
    try:
        for spec in command["calls"]:
            try:
                value = await call(clients[spec["protocol"]], command["url"], spec)
            except httpx.HTTPStatusError as exc:
                status = exc.response.status_code
                results.append({"error": error(exc, status)})
            except Exception as exc:  # noqa: BLE001 (reported to the test, which decides)
                results.append({"error": error(exc, None)})
            else:
                results.append({"result": value})
    finally:
        for client in clients.values():
            await client.close()
    return results


def error(exc: Exception, status: int | None) -> dict[str, Any]:
    return {"type": type(exc).__name__, "status": status, "message": str(exc)}


def main() -> None:
    command = json.load(sys.stdin)
    # Only the answer goes to stdout, whatever the libraries print.
    with contextlib.redirect_stdout(sys.stderr):
        results = asyncio.run(run(command))
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
