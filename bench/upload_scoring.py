"""Upload scoring end to end: rows per second and peak memory for files of growing size.

    .venv/bin/python -m bench.upload_scoring                 1k and 1M rows
    .venv/bin/python -m bench.upload_scoring --ten-million   also 10M rows (minutes)
    .venv/bin/python -m bench.upload_scoring --rows 5000 --gzip

Each size runs on a fresh `functions-framework --target score_upload` server reading from and
writing to a local Cloud Storage emulator (fake-gcs-server), with the bundled models published
there. A 10-row file is scored first, so the model is loaded before the clock starts; the time
is from posting the event to its answer: download, parsing, validation, prediction, upload and
publishing. RSS is the high-water mark (VmHWM) of the server's worker process, after the
warm-up file ("before") and after the big one ("peak"): the worker holds the model and at most
UPLOAD_CHUNK_ROWS rows at a time, so the peak should not grow with the file.
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from shared.store import WRITE_CHUNK_BYTES
from tests.integration.conftest import publish_all
from tests.integration.support import (
    FakeGcs,
    FunctionServer,
    post_event,
    server_pids,
    storage_event,
)

BLOCK_ROWS = 200_000
REPO = Path(__file__).resolve().parents[1]
BUCKET = "bench-uploads"


def customer_rows(rows: int, seed: int = 5) -> Iterator[bytes]:
    """A customers CSV in blocks: an id, the three features, ~1% rows out of range."""
    yield b"customer_id,age,gender,income\n"
    rng = np.random.default_rng(seed)
    for start in range(0, rows, BLOCK_ROWS):
        count = min(BLOCK_ROWS, rows - start)
        ids = np.arange(start, start + count)
        ages = rng.integers(18, 91, count)
        ages[rng.random(count) < 0.01] = 150
        genders = rng.choice(np.array(["F", "male", "other", "M", "female"]), count)
        incomes = rng.lognormal(10.8, 0.5, count).round(-2).astype(np.int64)
        columns = (ids.tolist(), ages.tolist(), genders.tolist(), incomes.tolist())
        lines = [f"C-{i},{a},{g},{m}\n" for i, a, g, m in zip(*columns, strict=True)]
        yield "".join(lines).encode()


def upload(client: storage.Client, name: str, rows: int, compress: bool) -> tuple[int, int]:
    """Stream a generated file into the emulator; returns (generation, size in bytes)."""
    blob = client.bucket(BUCKET).blob(name)
    with blob.open("wb", chunk_size=16 * 1024 * 1024, ignore_flush=True) as target:
        sink = gzip.GzipFile(fileobj=target, mode="wb", compresslevel=1) if compress else target
        for block in customer_rows(rows):
            sink.write(block)
        if compress:
            sink.close()
    stored = client.bucket(BUCKET).get_blob(name)
    return int(stored.generation), int(stored.size)


def peak_rss_mb(server: FunctionServer) -> float:
    """The largest VmHWM among the server's processes, in MiB."""
    peaks = []
    for pid in server_pids(server):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks)


def run_once(
    gcs: FakeGcs, client: storage.Client, store: str, rows: int, compress: bool, log_dir: Path
) -> dict[str, float]:
    name = f"incoming/customer_needs/bench-{rows}-{uuid.uuid4().hex[:6]}.csv" + (
        ".gz" if compress else ""
    )
    generation, size = upload(client, name, rows, compress)
    warm_name = name.replace("bench-", "warm-up-")
    # Large enough for the batch path and its out-of-range rows (the frame validator, pandas).
    warm_generation, _ = upload(client, warm_name, 1000, compress)
    env = {"STORAGE_EMULATOR_HOST": gcs.url, "MODEL_STORE": store, "STORAGE_TIMEOUT_SECONDS": "60"}
    server = FunctionServer("score_upload", env, log_dir / f"server-{rows}.log")
    server.start()
    try:
        deliver(server, warm_name, warm_generation)  # loads what scoring loads: not timed
        idle = peak_rss_mb(server)
        started = time.perf_counter()
        deliver(server, name, generation)
        seconds = time.perf_counter() - started
        peak = peak_rss_mb(server)
    finally:
        server.stop()
    prefix = name.replace("incoming/", "results/", 1)
    report = orjson.loads(
        client.bucket(BUCKET).blob(f"{prefix}/{generation}/report.json").download_as_bytes()
    )
    if report["status"] != "scored" or report["rows"]["read"] != rows:
        raise RuntimeError(f"unexpected report: {report}")
    return {
        "rows": rows,
        "mb": size / 1e6,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "idle_rss_mb": idle,
        "peak_rss_mb": peak,
    }


def deliver(server: FunctionServer, name: str, generation: int) -> None:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    event = storage_event(BUCKET, name, generation, event_id=uuid.uuid4().hex, time=now)
    post_event(server.url, event, "binary", timeout=3600).raise_for_status()


def measure(sizes: list[int], compress: bool = False) -> list[dict[str, float]]:
    """Score one generated file of each size end to end; one fresh server per size."""
    gcs = FakeGcs()
    gcs.start()
    try:
        gcs.create_bucket(BUCKET)
        store = publish_all(gcs, BUCKET)
        client = storage.Client(
            project="local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": gcs.url},
        )
        with tempfile.TemporaryDirectory() as logs:
            return [run_once(gcs, client, store, n, compress, Path(logs)) for n in sizes]
    finally:
        gcs.stop()


def in_process_rows_per_second(rows: int) -> float:
    """The same generated file scored by `score_stream` in this process, from memory to memory:
    the rate without storage, HTTP or a second process."""
    from shared.predict import Options
    from shared.settings import Settings
    from shared.store import LocalFolder, load_current
    from shared.uploads import score_stream

    def discard(data: bytes) -> None:
        del data

    def score(data: bytes) -> int:
        source = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]
        chunk = Settings.upload_chunk_rows
        return score_stream(source, model, Options(), chunk, discard, discard).read

    model = load_current(LocalFolder(REPO / "models"), "customer_needs")
    data = b"".join(customer_rows(rows))
    score(data[:4096])  # the tree table is built on the first batch: not part of the timing
    started = time.perf_counter()
    read = score(data)
    seconds = time.perf_counter() - started
    if read != rows:
        raise RuntimeError(f"read {read} rows of {rows}")
    return rows / seconds


def emulator_append_seconds(megabytes: int = 320) -> tuple[float, float]:
    """Seconds the storage emulator takes to accept an 8 MiB chunk of a resumable upload, at
    the start and at the end of a `megabytes` object (medians of the first and last five)."""
    gcs = FakeGcs()
    gcs.start()
    try:
        gcs.create_bucket(BUCKET)
        client = storage.Client(
            project="local",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": gcs.url},
        )
        chunk = WRITE_CHUNK_BYTES
        data = b"0" * chunk
        times = []
        blob = client.bucket(BUCKET).blob("append-probe")
        with blob.open("wb", chunk_size=chunk, ignore_flush=True) as target:
            for _ in range(megabytes * 1024 * 1024 // chunk):
                started = time.perf_counter()
                target.write(data)
                times.append(time.perf_counter() - started)
        return statistics.median(times[1:6]), statistics.median(times[-5:])
    finally:
        gcs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[1_000, 1_000_000])
    parser.add_argument("--ten-million", action="store_true", help="add a 10M-row file")
    parser.add_argument("--gzip", action="store_true", help="upload gzip-compressed files")
    args = parser.parse_args()
    sizes = [*args.rows, *([10_000_000] if args.ten_million else [])]
    results = measure(sizes, args.gzip)
    print(
        f"{'rows':>12} {'file MB':>9} {'seconds':>9} {'rows/s':>10} "
        f"{'RSS before MB':>14} {'peak RSS MB':>12}"
    )
    for result in results:
        print(
            f"{result['rows']:>12,} {result['mb']:>9.1f} {result['seconds']:>9.2f} "
            f"{result['rows_per_s']:>10,.0f} {result['idle_rss_mb']:>14.0f} "
            f"{result['peak_rss_mb']:>12.0f}"
        )


if __name__ == "__main__":
    main()
