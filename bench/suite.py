"""The benchmark suite: our functions next to the plain handler and two floors, in one run.

    .venv/bin/python -m bench.suite [--quick] [--out BENCHMARKS.md]

Everything is measured interleaved in the same run and reported as medians and ratios to the
plain handler (bench/plain_handler.py), because this machine is shared and noisy. The floors
are a handler answering a constant on each of functions-framework's stacks
(bench/constant_handler.py): the default one (gunicorn threads, Flask) and the ASGI one our
functions run on; the targets of the HTTP rows are set against the ASGI floor. Every answer
timed is checked against in-process predictions. Needs `wrk` for throughput (Debian package;
installed when missing and this runs as root).
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shared.schema import MODELS as SERVED
from shared.schema import NumericFeature
from shared.store import LoadedModel, LocalFolder, load_current
from tests.integration.support import free_port, stop_process

REPO = Path(__file__).resolve().parents[1]
MODELS = {name: model.function for name, model in SERVED.items()}


@dataclass(frozen=True)
class Server:
    """How to start one kind of server for one model."""

    label: str
    model: str
    command: Callable[[int], list[str]]
    env: dict[str, str] = field(default_factory=dict)


def ours(model: str) -> Server:
    target = MODELS[model]
    return Server(
        "ours",
        model,
        lambda port: [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )


def plain(model: str, bundled: LoadedModel) -> Server:
    path = REPO / "models" / model / bundled.version / "model.joblib"
    return Server(
        "plain",
        model,
        lambda port: [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(REPO / "bench" / "plain_handler.py"),
            "--target",
            "plain_predict",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        {"PLAIN_MODEL_PATH": str(path)},
    )


def constant(target: str = "constant") -> Server:
    """A handler that reads the body and answers a constant: `constant` on the default stack
    (gunicorn threads, Flask), `constant_asgi` on the ASGI stack our functions run on."""
    return Server(
        target,
        "-",
        lambda port: [
            sys.executable,
            "-m",
            "functions_framework",
            "--source",
            str(REPO / "bench" / "constant_handler.py"),
            "--target",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
    )


FLOORS = ("constant", "constant_asgi")


# --- payloads and checks ----------------------------------------------------------------------


def rows(model: LoadedModel, count: int, seed: int = 1) -> pd.DataFrame:
    """Valid rows in canonical spelling, so every server answers them."""
    background = pd.DataFrame(model.metadata["explanations"]["background"])
    frame = background.sample(count, replace=True, random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    for feature in model.schema.features:
        if isinstance(feature, NumericFeature):
            jittered = frame[feature.name] * rng.uniform(0.95, 1.05, count)
            frame[feature.name] = jittered.clip(feature.minimum, feature.maximum).round(3)
    return frame[list(model.schema.feature_names)]


def json_body(frame: pd.DataFrame) -> bytes:
    return json.dumps({"instances": frame.to_dict(orient="records")}).encode()


def csv_body(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def check(label: str, answer: bytes, kind: str, expected: np.ndarray, target: str) -> None:
    """Fail loudly if a timed answer is not the model's own prediction."""
    if kind == "json":
        got = np.asarray(json.loads(answer)["predictions"], dtype=float)
    else:
        table = pd.read_csv(io.BytesIO(answer))
        got = table[target if target in table else "prediction"].to_numpy(dtype=float)
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-9, atol=0):
        raise AssertionError(f"{label}: answers differ from in-process predictions")


# --- processes --------------------------------------------------------------------------------


@contextmanager
def running(server: Server) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, **server.env}
    process = subprocess.Popen(
        server.command(port),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield port, process
    finally:
        stop_process(process)


def post(
    port: int, body: bytes, kind: str, connection: http.client.HTTPConnection | None = None
) -> tuple[int, bytes]:
    own = connection is None
    conn = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    content_type = "application/json" if kind == "json" else "text/csv"
    conn.request("POST", "/", body=body, headers={"Content-Type": content_type})
    response = conn.getresponse()
    data = response.read()
    if own:
        conn.close()
    return response.status, data


def cold_start(server: Server, body: bytes, expected: np.ndarray, target: str) -> tuple[float, int]:
    """Seconds from launch to the first correct answer, and the worker's peak RSS in KiB."""
    started = time.perf_counter()
    with running(server) as (port, process):
        while True:
            try:
                status, data = post(port, body, "json")
                if status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"{server.label} {server.model} exited during start")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        if server.label not in FLOORS:
            check(f"cold start {server.label}", data, "json", expected, target)
        return elapsed, peak_rss_kib(process.pid)


def peak_rss_kib(pid: int) -> int:
    """The largest VmHWM among the server process and its children (the gunicorn worker)."""
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        pids += [int(p) for p in task.read_text().split()]
    peaks = []
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]))
    return max(peaks)


def latencies(port: int, body: bytes, count: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status, _ = post(port, body, "json", conn)
        times.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"status {status}")
    conn.close()
    return times


def throughput(port: int, body: bytes, connections: int, seconds: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "post.lua"
        script.write_text(
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = {json.dumps(body.decode())}\n"
        )
        output = subprocess.run(
            [
                "wrk",
                "-t2",
                f"-c{connections}",
                f"-d{seconds}s",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}/",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    raise RuntimeError(f"wrk printed no rate:\n{output}")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Results:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        metric: str,
        model: str,
        ours: float,
        plain: float | None,
        floor: float | None,
        unit: str,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        ratio = ours / plain if plain else None
        self.rows.append(
            {
                "metric": metric,
                "model": model,
                "ours": ours,
                "plain": plain,
                "ratio": ratio,
                "floor": floor,
                "unit": unit,
                "target": target,
                "met": met,
            }
        )
        shown = f"{ratio:.2f}x" if ratio is not None else "-"
        print(
            f"{metric:<34} {model:<15} ours {ours:10.4g} plain {plain or float('nan'):10.4g} "
            f"{unit:<6} ratio {shown}",
            flush=True,
        )


def run(quick: bool, ten_million: bool = False) -> Results:
    results = Results()
    bundled = {name: load_current(LocalFolder(REPO / "models"), name) for name in MODELS}
    one = {name: rows(model, 1) for name, model in bundled.items()}
    expected_one = {name: bundled[name].pipeline.predict(one[name]) for name in MODELS}
    rounds = 3 if quick else 5

    # Cold start: launch -> first correct answer, interleaved.
    starts: dict[tuple[str, str], list[tuple[float, int]]] = {}
    kinds = [(s, name) for name in MODELS for s in (ours(name), plain(name, bundled[name]))]
    for _ in range(rounds):
        for server, name in [*kinds, (constant("constant_asgi"), "customer_needs")]:
            target = bundled[name].schema.target
            sample = cold_start(server, json_body(one[name]), expected_one[name], target)
            starts.setdefault((server.label, server.model), []).append(sample)
    constant_start = statistics.median(s for s, _ in starts[("constant_asgi", "-")])
    constant_memory = statistics.median(m for _, m in starts[("constant_asgi", "-")]) / 1024
    for name in MODELS:
        ours_s = statistics.median(s for s, _ in starts[("ours", name)])
        plain_s = statistics.median(s for s, _ in starts[("plain", name)])
        results.add(
            "cold start (launch to answer)",
            name,
            ours_s,
            plain_s,
            constant_start,
            "s",
            "<= 0.18x (before ASGI)",
            ours_s <= 0.18 * plain_s,
        )
        ours_m = statistics.median(m for _, m in starts[("ours", name)]) / 1024
        plain_m = statistics.median(m for _, m in starts[("plain", name)]) / 1024
        results.add(
            "peak memory after first answer",
            name,
            ours_m,
            plain_m,
            constant_memory,
            "MiB",
            "<= 35.5 MiB (before ASGI)",
            ours_m <= 35.5,
        )

    floors = [(constant(target), "-") for target in FLOORS]
    with _all_running([*kinds, *floors]) as ports:
        _wait_ready(ports, one, expected_one, bundled)
        _latency(results, ports, one, quick)
        _throughput(results, ports, one, quick)
        _batches(results, ports, bundled, quick)
        _mixed(results, ports, bundled, one, quick)
    _in_process(results, bundled, one)
    _stages(results, bundled, one)
    _files_and_training(results, sizes=[1_000, 1_000_000, *([10_000_000] if ten_million else [])])
    return results


def _files_and_training(results: Results, sizes: list[int]) -> None:
    from bench import training, upload_scoring

    scored = upload_scoring.measure(sizes)
    for result in scored:
        results.add(
            f"file scoring, {int(result['rows']):,} rows",
            "customer_needs",
            result["rows_per_s"],
            None,
            None,
            "rows/s",
        )
        results.add(
            f"file scoring peak RSS, {int(result['rows']):,} rows",
            "customer_needs",
            result["peak_rss_mb"],
            None,
            None,
            "MB",
        )
    in_process = upload_scoring.in_process_rows_per_second(1_000_000)
    results.add(
        "file scoring in process, 1,000,000 rows",
        "customer_needs",
        in_process,
        None,
        None,
        "rows/s",
        ">= 1M rows/s",
        in_process >= 1_000_000,
    )
    if max(sizes) >= 10_000_000:
        first, last = upload_scoring.emulator_append_seconds()
        results.add("emulator: 8 MiB upload chunk at 0 MB", "-", first, None, None, "s")
        results.add("emulator: 8 MiB upload chunk at 320 MB", "-", last, None, None, "s")
    if len(scored) > 2:  # a file past 1M rows was scored: its peak next to 1M's
        growth = scored[-1]["peak_rss_mb"] / scored[1]["peak_rss_mb"]
        results.add(
            "file scoring peak RSS, largest / 1M",
            "customer_needs",
            growth,
            None,
            None,
            "ratio",
            "flat (about 1)",
            growth <= 1.1,
        )
    timing = training.measure(1_000_000, runs=1)
    results.add(
        "training, 1M customer rows, one core",
        "customer_needs",
        timing["train_s"],
        None,
        None,
        "s",
        "< 60 s",
        timing["train_s"] < 60,
    )


@contextmanager
def _all_running(kinds: list[tuple[Server, str]]) -> Iterator[dict[tuple[str, str], int]]:
    managers = [running(server) for server, _ in kinds]
    ports = {}
    try:
        for (server, _), manager in zip(kinds, managers, strict=True):
            port, _ = manager.__enter__()
            ports[(server.label, server.model)] = port
        yield ports
    finally:
        for manager in managers:
            manager.__exit__(None, None, None)


def _wait_ready(ports, one, expected_one, bundled) -> None:
    for (label, model), port in ports.items():
        name = model if model != "-" else "customer_needs"
        deadline = time.monotonic() + 60
        while True:
            try:
                status, data = post(port, json_body(one[name]), "json")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label} {model} never answered")
            time.sleep(0.05)
        if label not in FLOORS:
            check(label, data, "json", expected_one[name], bundled[name].schema.target)


def _latency(results, servers, one, quick) -> None:
    per_round, rounds = (100, 3) if quick else (200, 5)
    samples: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for (label, model), port in servers.items():
            name = model if model != "-" else "customer_needs"
            samples.setdefault((label, model), []).extend(
                latencies(port, json_body(one[name]), per_round)
            )
    floors = {label: statistics.median(samples[(label, "-")]) * 1000 for label in FLOORS}
    for label, stack in (("constant", "default stack"), ("constant_asgi", "ASGI stack")):
        results.add(f"constant floor p50, {stack}", "-", floors[label], None, None, "ms")
    for name in MODELS:
        ours_p50 = statistics.median(samples[("ours", name)]) * 1000
        plain_p50 = statistics.median(samples[("plain", name)]) * 1000
        ours_p99 = percentile(samples[("ours", name)], 99) * 1000
        results.add(
            "single-row latency p50",
            name,
            ours_p50,
            plain_p50,
            floors["constant_asgi"],
            "ms",
            "<= 1.5x floor",
            ours_p50 <= 1.5 * floors["constant_asgi"],
        )
        results.add(
            "single-row latency p99",
            name,
            ours_p99,
            percentile(samples[("plain", name)], 99) * 1000,
            None,
            "ms",
            "<= 3x our p50",
            ours_p99 <= 3 * ours_p50,
        )


def _throughput(results, servers, one, quick) -> None:
    ensure_wrk()
    seconds, rounds = (3, 1) if quick else (5, 3)
    for connections in (8, 32):
        rates: dict[tuple[str, str], list[float]] = {}
        for _ in range(rounds):
            for (label, model), port in servers.items():
                name = model if model != "-" else "customer_needs"
                rates.setdefault((label, model), []).append(
                    throughput(port, json_body(one[name]), connections, seconds)
                )
        floors = {label: statistics.median(rates[(label, "-")]) for label in FLOORS}
        for label, stack in (("constant", "default stack"), ("constant_asgi", "ASGI stack")):
            metric = f"constant floor, {connections} connections, {stack}"
            results.add(metric, "-", floors[label], None, None, "req/s")
        for name in MODELS:
            ours_r = statistics.median(rates[("ours", name)])
            plain_r = statistics.median(rates[("plain", name)])
            wide = connections == 32
            met = ours_r >= 0.5 * floors["constant_asgi"] and ours_r >= 3 * floors["constant"]
            results.add(
                f"throughput, {connections} connections",
                name,
                ours_r,
                plain_r,
                floors["constant_asgi"],
                "req/s",
                ">= 0.5x floor, >= 3x default floor" if wide else "",
                met if wide else None,
            )


def _batches(results, servers, bundled, quick) -> None:
    """Batches of 1k and 100k rows, JSON and CSV; the floor is the constant handler on the
    ASGI stack receiving the same body."""
    for count, repeats in ((1_000, 21), (100_000, 9)):
        for kind in ("json", "csv"):
            for name, model in bundled.items():
                frame = rows(model, count, seed=count)
                body = json_body(frame) if kind == "json" else csv_body(frame)
                expected = model.pipeline.predict(frame)
                ports = {label: servers[(label, name)] for label in ("ours", "plain")}
                ports["constant_asgi"] = servers[("constant_asgi", "-")]
                answer_is_right = partial(_batch_answer, kind, expected, model.schema.target)
                times = _median_ms(ports, body, kind, 5 if quick else repeats, answer_is_right)
                metric = f"{count:,}-row request, {kind.upper()}"
                floor = times["constant_asgi"]
                results.add(metric, name, times["ours"], times["plain"], floor, "ms")
                if count < 100_000:
                    continue
                rate, floor_rate = count / times["ours"] * 1000, count / floor * 1000
                plain_rate = count / times["plain"] * 1000
                results.add(
                    f"{metric}, rows/s",
                    name,
                    rate,
                    plain_rate,
                    floor_rate,
                    "rows/s",
                    ">= 2M rows/s",
                    rate >= 2_000_000,
                )


def _mixed(results, servers, bundled, one, quick) -> None:
    """Single rows on one connection while another keeps sending 100k-row JSON batches."""
    count = 300 if quick else 1000
    for name, model in bundled.items():
        port = servers[("ours", name)]
        batch = json_body(rows(model, 100_000, seed=7))
        single, batches = _under_batches(port, json_body(one[name]), batch, count)
        batch_ms = statistics.median(batches) * 1000
        p99 = percentile(single, 99) * 1000
        results.add(
            "single-row p50 under 100k-row batches",
            name,
            statistics.median(single) * 1000,
            None,
            None,
            "ms",
        )
        results.add(
            "single-row p99 under 100k-row batches",
            name,
            p99,
            None,
            batch_ms,
            "ms",
            "<= 0.5x one batch",
            p99 <= 0.5 * batch_ms,
        )
        results.add("one 100k-row batch, under single rows", name, batch_ms, None, None, "ms")


def _under_batches(
    port: int, one: bytes, batch: bytes, count: int
) -> tuple[list[float], list[float]]:
    """`count` single-row latencies taken while batches are sent back to back on another
    connection (the first batch is under way before the first single row), and each batch's
    time."""
    batches: list[float] = []
    started, stop = threading.Event(), threading.Event()

    def send_batches() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while not stop.is_set():
            began = time.perf_counter()
            conn.request("POST", "/", body=batch, headers={"Content-Type": "application/json"})
            started.set()
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"batch: status {response.status}")
            batches.append(time.perf_counter() - began)
        conn.close()

    sender = threading.Thread(target=send_batches)
    sender.start()
    started.wait()
    try:
        single = latencies(port, one, count)
        while not batches:  # at least one whole batch overlapped the single rows
            single += latencies(port, one, 10)
    finally:
        stop.set()
        sender.join()
    return single, batches


def _batch_answer(kind: str, expected: np.ndarray, target: str, label: str, data: bytes) -> None:
    if label not in FLOORS:
        check(f"{label} {kind} {len(expected)}", data, kind, expected, target)


def _median_ms(
    ports: dict[str, int],
    body: bytes,
    kind: str,
    repeats: int,
    answer_is_right: Callable[[str, bytes], None],
) -> dict[str, float]:
    """Each server's median time for the same request, interleaved round by round; every
    answer is checked after its clock stops."""
    times: dict[str, list[float]] = {label: [] for label in ports}
    for _ in range(repeats):
        for label, port in ports.items():
            started = time.perf_counter()
            status, data = post(port, body, kind)
            times[label].append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"{label} {kind}: status {status}")
            answer_is_right(label, data)
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


def _in_process(results, bundled, one) -> None:
    for name, model in bundled.items():
        frame = one[name]
        samples = []
        for _ in range(300):
            started = time.perf_counter()
            model.pipeline.predict(frame)
            samples.append(time.perf_counter() - started)
        results.add(
            "in-process predict, 1 row (floor)",
            name,
            statistics.median(samples) * 1000,
            None,
            None,
            "ms",
        )


def report(results: Results, command: str, seconds: float) -> str:
    lines = [
        "# Benchmarks",
        "",
        f"Command: `{command}` ({seconds:.0f} s). Machine: {platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{time.strftime('%Y-%m-%d', time.gmtime())}.",
        "",
        "Medians of interleaved runs; ratios are ours / the plain handler in the same run.",
        "",
        "| metric | model | ours | plain handler | ratio | floor | unit | target | met |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for row in results.rows:

        def fmt(value: float | None) -> str:
            return "-" if value is None else f"{value:.4g}"

        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        met = "" if row["met"] is None else ("yes" if row["met"] else "**no**")
        lines.append(
            f"| {row['metric']} | {row['model']} | {fmt(row['ours'])} | {fmt(row['plain'])} | "
            f"{ratio} | {fmt(row['floor'])} | {row['unit']} | {row['target']} | {met} |"
        )
    return "\n".join([*lines, "", *notes(results)]) + "\n"


def notes(results: Results) -> list[str]:
    """What stands in the way of each target not met, from this run's own numbers."""
    lines = ["## Where a target is not met", ""]
    missed = [row for row in results.rows if row["met"] is False]
    stages = {
        (r["metric"], r["model"]): r["ours"] for r in results.rows if "in process:" in r["metric"]
    }
    for row in missed:
        metric, model, floor = row["metric"], row["model"], row["floor"]
        if "latency p50" in metric:
            work = _stage_text(stages, "1 JSON row", model)
            lines.append(
                f"- {metric}, {model}: the ASGI stack answering a constant takes {floor:.3g} ms; "
                f"ours adds {row['ours'] - floor:.3g} ms. In process, {work}; the rest is our "
                "edge: the request read into ours, routing, headers, the reply and the log line."
            )
        elif "throughput" in metric:
            work = _stage_text(stages, "1 JSON row", model)
            default = next(
                r["ours"]
                for r in results.rows
                if r["metric"] == metric.replace("throughput", "constant floor") + ", default stack"
            )
            lines.append(
                f"- {metric}, {model}: ours serves {row['ours'] / floor:.0%} of the ASGI "
                f"floor's rate and {row['ours'] / default:.1f}x the default stack's. One "
                f"process serves on one core at a time; in process, {work}."
            )
        elif "rows/s" in metric:
            kind = "100k JSON rows" if "JSON" in metric else "100k CSV rows"
            lines.append(
                f"- {metric}, {model} ({row['ours']:,.0f} rows/s): receiving the body and "
                f"answering a constant runs at {floor:,.0f} rows/s; in process, "
                f"{_stage_text(stages, kind, model)}."
            )
        elif "under 100k-row batches" in metric:
            decode = stages.get(("in process: 100k JSON rows, decode", model))
            lines.append(
                f"- {metric}, {model}: a batch runs on its own thread, but under one interpreter "
                "lock with the event loop: a single step that holds the lock for long (decoding "
                f"the body took {decode:.3g} ms in process) makes the loop wait that long."
                if decode
                else f"- {metric}, {model}: see the in-process stages above."
            )
        elif metric.startswith(("cold start", "peak memory")):
            lines.append(
                f"- {metric}, {model} ({row['ours']:.4g} {row['unit']}): the ASGI stack's "
                f"constant handler alone takes {floor:.4g} {row['unit']}; ours adds "
                f"{row['ours'] - floor:.3g} {row['unit']} (the model store, the model and our "
                "modules)."
            )
        elif "peak RSS" in metric:
            peaks = [r["ours"] for r in results.rows if r["metric"].startswith("file scoring peak")]
            lines.append(
                f"- {metric} ({row['ours']:.3g}): the worker's peak was {peaks[1]:.4g} MB after "
                f"1M rows and {peaks[2]:.4g} MB after the largest file; it holds "
                "UPLOAD_CHUNK_ROWS rows at a time, so the growth is not the file's size."
            )
        elif "file scoring in process" in metric:
            lines.append(
                f"- {metric} ({row['ours']:,.0f} rows/s): memory to memory, the rows are read "
                "from CSV text, checked, predicted and written back as CSV text; see the "
                "in-process CSV stages above for where a row's time goes."
            )
        elif "file scoring" in metric:
            lines.append(_file_note(results, row))
        else:
            lines.append(f"- {metric}, {model}: {row['ours']:.4g} {row['unit']}.")
    if not missed:
        lines.append("- Every target was met in this run.")
    return lines


def _stage_text(stages: dict[tuple[str, str], float], kind: str, model: str) -> str:
    parts = [
        f"{stage} {stages[(f'in process: {kind}, {stage}', model)]:.3g} ms"
        for stage in ("decode", "predict", "encode")
        if (f"in process: {kind}, {stage}", model) in stages
    ]
    return f"{kind} cost " + ", ".join(parts) if parts else f"{kind}: not measured"


def _stages(results: Results, bundled: dict[str, LoadedModel], one: dict[str, Any]) -> None:
    """Each request kind's work in process, by stage, as functions/protocols.py does it."""
    from shared import codecs
    from shared.predict import parse_options, predict

    options = parse_options({})
    for name, model in bundled.items():
        big = rows(model, 100_000, seed=100_000)
        for kind, frame, repeats in (("1 JSON row", one[name], 300), ("100k JSON rows", big, 7)):
            body = json_body(frame)
            decoded = _decode_json(body, model)
            prediction = predict(model, decoded, options)
            _add_stages(
                results,
                name,
                kind,
                repeats,
                decode=partial(_decode_json, body, model),
                predict=partial(predict, model, decoded, options),
                encode=partial(_encode_json, prediction),
            )
        body = csv_body(big)
        table = codecs.read_csv(body, 10**6)
        prediction = predict(model, table.rows(model.schema), options)  # as functions/protocols.py
        _add_stages(
            results,
            name,
            "100k CSV rows",
            7,
            decode=partial(codecs.read_csv, body, 10**6),
            predict=partial(_predict_table, model, table, options),
            encode=partial(_encode_csv, table, prediction),
        )


def _decode_json(body: bytes, model: LoadedModel) -> Any:
    from shared import codecs

    batch = codecs.decode_instances(body, model.schema, 10**6)
    if batch is not None:
        return batch.rows
    parsed = codecs.envelope(codecs.parse_json(body), 10**6)
    return codecs.instance_rows(parsed.instances, model.schema.feature_names)


def _predict_table(model: LoadedModel, table: Any, options: Any) -> Any:
    """The table's columns (a grid's are cut out here) checked and predicted."""
    from shared.predict import predict

    return predict(model, table.rows(model.schema), options)


def _encode_csv(table: Any, prediction: Any) -> bytes:
    from shared import codecs

    return codecs.encode_table(table, prediction.columns())


def _encode_json(prediction: Any) -> bytes:
    from shared import codecs

    return codecs.encode_json(codecs.json_answer(prediction))


def _add_stages(
    results: Results, name: str, kind: str, repeats: int, **stages: Callable[[], Any]
) -> None:
    for stage, run in stages.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        median = statistics.median(times) * 1000
        results.add(f"in process: {kind}, {stage}", name, median, None, None, "ms")


def _file_note(results: Results, row: dict[str, Any]) -> str:
    seconds = int(row["metric"].split()[2].replace(",", "")) / row["ours"]
    head = f"- {row['metric']} ({row['ours']:,.0f} rows/s, {seconds:.3g} s for the file): "
    if seconds < 0.5:
        return head + (
            "the fixed cost of an event stands in the way at this size: reading the object's "
            "metadata, staging two outputs, and publishing three objects with preconditions, "
            "a few storage round trips each."
        )
    floors = ("emulator", "file scoring in process")
    probe = {r["metric"]: r["ours"] for r in results.rows if r["metric"].startswith(floors)}
    alone = probe.get("file scoring in process, 1,000,000 rows")
    first = probe.get("emulator: 8 MiB upload chunk at 0 MB")
    last = probe.get("emulator: 8 MiB upload chunk at 320 MB")
    text = head
    if alone:
        text += (
            f"the same file scored in process, memory to memory, runs at {alone:,.0f} rows/s "
            "in this run; the rest is storage, served by an emulator on the same two cores. "
        )
    if first and last:
        text += (
            "The emulator copies the whole object on every chunk of a resumable upload: in "
            f"this run it took {first:.3g} s to accept an 8 MiB chunk at the start of an object "
            f"and {last:.3g} s at 320 MB, so the outputs of a large file cost more per row the "
            "larger they grow."
        )
    return text.rstrip()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.suite")
    parser.add_argument("--quick", action="store_true", help="fewer rounds, for a smoke run")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--ten-million", action="store_true", help="also score a 10M-row file")
    args = parser.parse_args()
    started = time.perf_counter()
    results = run(args.quick, args.ten_million)
    command = (
        "python -m bench.suite"
        + (" --quick" if args.quick else "")
        + (" --ten-million" if args.ten_million else "")
    )
    args.out.write_text(report(results, command, time.perf_counter() - started))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
