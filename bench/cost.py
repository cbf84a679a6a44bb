"""AWS requests per upload, counted on the local stack, and the cost per million uploads.

    .venv/bin/python bench/cost.py [--uploads 30] [--bench-json OUT_OF_RUN_PY] [--json OUT]
                                   [--function-log FILE]

Runs ``--uploads`` generated photos through the real handlers on the local moto stack (the
built-in pipeline: 3 variants) and counts every call the functions make, by service and
operation (a ``before-parameter-build`` hook on the functions' aioboto3 session). From those counts,
the imaging time per upload (``bench/run.py --json``'s prism-2t geomean, or a quick
measurement here) and the unit prices below, it prints the cost per million uploads at
arm64 prices and the worker memory with the lowest cost per upload that still holds the
heaviest accepted input. The handlers' own logs go to ``--function-log``
(``bench/results/cost_functions.log``), not to the report. Every price is us-east-1,
on-demand, as published by AWS:
- Lambda (aws.amazon.com/lambda/pricing): arm64 $0.0000133334 per GB-s, $0.20 per million
  requests;
- DynamoDB on-demand (aws.amazon.com/dynamodb/pricing/on-demand, after the November 2024
  cut): $0.625 per million write request units, $0.125 per million read request units; a
  write of an item up to 1 KB is 1 WRU, 2 in a transaction, and 1 more for each item the
  ``by-job`` index (projection ALL) holds; a strongly consistent read up to 4 KB is 1 RRU;
- S3 Standard (aws.amazon.com/s3/pricing): $0.005 per 1,000 PUT/COPY/POST/LIST, $0.0004
  per 1,000 GET and other requests;
- SQS standard (aws.amazon.com/sqs/pricing): $0.40 per million requests; Lambda's own
  poller receives and deletes in batches of up to 10 (2 requests a batch);
- EventBridge (aws.amazon.com/eventbridge/pricing): $1.00 per million custom events
  published, each 64 KB chunk of an event counted as one; the stack's rule delivers each
  to its events queue (one SQS request).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

import prism.aws.clients
from prism_cli.local.function_log import function_output_to
from prism_cli.local.lambda_emulator import emulators_for, run_until_idle
from prism_cli.local.stack import LocalStack
from prism_cli.local.template import find_template

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1e6
WRU, RRU = 0.625 / 1e6, 0.125 / 1e6
S3_WRITE, S3_READ = 0.005 / 1000, 0.0004 / 1000
SQS_REQUEST = 0.40 / 1e6
EVENT_PUBLISHED = 1.00 / 1e6
EVENT_CHUNK_BYTES = 64 * 1024
SQS_BATCH = 10
# Lambda gives a function one vCPU at 1,769 MB, in proportion below and above.
MB_PER_VCPU = 1769
# Peak RSS of the heaviest accepted input (a 100 MP animated WebP, read by Pillow for its first
# frame: as a 100 MP still WebP was before Prism decoded stills itself, 2 threads;
# bench/memory.py) and the headroom a worker keeps above it.
HEAVIEST_PEAK_MB = 1612
HEADROOM = 1.2
# Time a worker invocation waits on S3, DynamoDB and SQS per upload (requests overlap); an
# assumption, not measured here: moto's latencies are not AWS's.
IO_MS_PER_UPLOAD = 60.0
FANOUT_MB, FANOUT_MS_PER_UPLOAD = 256, 40.0
MEMORY_CHOICES = (1024, 1536, 1769, 2048, 2560, 3008, 3538)

_S3_WRITES = {"PutObject", "CopyObject", "DeleteObject", "ListObjectsV2"}
# Items written per operation that the by-job index holds (source, variant and run items).
_INDEXED_SK = ("SOURCE", "VARIANT#", "RUN#")


class CallCounter:
    """Counts the functions' AWS calls; DynamoDB's with their request units."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.events = 0  # EventBridge's billed events: 64 KB chunks of each entry
        self._lock = threading.Lock()

    def __call__(self, model: Any, params: dict[str, Any], **kwargs: Any) -> None:
        service = model.service_model.service_name
        with self._lock:
            self.calls[f"{service}.{model.name}"] += 1
            if service == "dynamodb":
                self._units(model.name, params)
            elif model.name == "PutEvents":
                self.events += sum(
                    -(-len(entry["Detail"].encode()) // EVENT_CHUNK_BYTES)
                    for entry in params["Entries"]
                )

    def _units(self, operation: str, params: dict[str, Any]) -> None:
        if operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                (kind, body), *_ = item.items()
                if kind != "ConditionCheck":
                    self.wru += 2 + _indexed(body)
                else:
                    self.rru += 2
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            self.wru += 1 + _indexed(params)
        elif operation in ("GetItem", "Query"):
            self.rru += 1
        elif operation == "BatchGetItem":  # items up to 4 KB (shards, source and run): 1 RRU each
            self.rru += sum(len(request["Keys"]) for request in params["RequestItems"].values())


def _indexed(body: dict[str, Any]) -> int:
    key = body.get("Item") or body.get("Key") or {}
    sort_key = str(key.get("sk", {}).get("S", ""))
    return int(sort_key.startswith(_INDEXED_SK))


def photo(index: int) -> bytes:
    image = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    ImageDraw.Draw(image).ellipse((index * 7 % 800, 100, 900, 900), fill=(200, index % 255, 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def count_requests(uploads: int, function_log: Path) -> tuple[CallCounter, float]:
    counter = CallCounter()
    prism.aws.clients._session._session.register("before-parameter-build", counter)
    started = time.monotonic()
    function_log.parent.mkdir(parents=True, exist_ok=True)
    # The handlers' logs and metrics go to a file, as in `prism run`: not into the report.
    with function_output_to(function_log), LocalStack(find_template()) as stack:
        bucket = stack.bucket_name("InputBucket")
        for index in range(uploads):
            stack.clients.s3.put_object(
                Bucket=bucket, Key=f"uploads/bench/photo-{index:03d}.jpg", Body=photo(index)
            )
        emulators = emulators_for(
            stack.template,
            stack.clients.sqs,
            instances={"WorkerFunction": 2, "FanoutFunction": 1},
        )
        run_until_idle(emulators, stack.clients.sqs, timeout=600)
        errors = [error for emulator in emulators for error in emulator.errors]
        if errors:
            raise SystemExit(f"cost: {len(errors)} invocations failed; first: {errors[0]!r:.500}")
    return counter, time.monotonic() - started


def imaging_ms(bench_json: Path | None) -> tuple[float, float, str]:
    """Imaging ms per upload on one thread and on two, and where the figures come from."""
    if bench_json is not None and bench_json.is_file():
        summary = json.loads(bench_json.read_text())["summary"]["geomean_ms"]
        return summary["prism_1t"], summary["prism_2t"], f"{bench_json} (corpus geomean)"
    sys.path.insert(0, str(Path(__file__).parent))
    from workloads import prism_sequential, prism_threaded

    data = photo(1)
    with ThreadPoolExecutor(2) as pool:
        one = statistics.median(_timed(lambda: prism_sequential(data)) for _ in range(5))
        two = statistics.median(_timed(lambda: prism_threaded(data, pool)) for _ in range(5))
    return one, two, "a generated 1600x1200 JPEG, median of 5"


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return (time.perf_counter() - started) * 1000


def worker_ms(memory_mb: int, one_thread_ms: float, two_thread_ms: float) -> float:
    """Worker duration per upload at ``memory_mb``: imaging on the vCPUs Lambda gives that
    memory (its 2 threads scale as measured, up to 2 vCPUs), plus the I/O wait."""
    vcpus = memory_mb / MB_PER_VCPU
    scaling = one_thread_ms / two_thread_ms
    speed = vcpus if vcpus <= 1 else 1 + (min(vcpus, 2) - 1) * (scaling - 1)
    return one_thread_ms / speed + IO_MS_PER_UPLOAD


def report(counter: CallCounter, uploads: int, ms: tuple[float, float, str]) -> dict[str, Any]:
    per = {name: count / uploads for name, count in sorted(counter.calls.items())}
    sqs_messages = per.get("sqs.SendMessageBatch", 0) * 3 + 1  # tasks sent + the notification
    poller = 2 * sqs_messages / SQS_BATCH
    s3_write = sum(v for k, v in per.items() if k.startswith("s3.") and k[3:] in _S3_WRITES)
    s3_read = sum(v for k, v in per.items() if k.startswith("s3.")) - s3_write
    events = counter.events / uploads
    # The functions' own calls, the poller's, and the rule's delivery of each event.
    sqs_calls = sum(v for k, v in per.items() if k.startswith("sqs.")) + poller + events
    one, two, source = ms
    worker_mb = min(m for m in MEMORY_CHOICES if m >= HEAVIEST_PEAK_MB * HEADROOM)
    costs = []
    for memory in MEMORY_CHOICES:
        gb_s = memory / 1024 * worker_ms(memory, one, two) / 1000
        gb_s += FANOUT_MB / 1024 * FANOUT_MS_PER_UPLOAD / 1000
        costs.append((memory, gb_s * LAMBDA_GB_SECOND * 1e6))
    lambda_cost = dict(costs)[worker_mb]
    invocations = 2 * (sqs_messages / SQS_BATCH)  # batches of up to 10 to each function
    lines = [
        ("Lambda duration", lambda_cost, f"worker {worker_mb} MB + fan-out, $0.0000133334/GB-s"),
        ("Lambda requests", invocations * LAMBDA_REQUEST * 1e6, "$0.20 per million"),
        ("DynamoDB writes", counter.wru / uploads * WRU * 1e6, f"{counter.wru / uploads:.1f} WRU"),
        ("DynamoDB reads", counter.rru / uploads * RRU * 1e6, f"{counter.rru / uploads:.1f} RRU"),
        (
            "S3 requests",
            (s3_write * S3_WRITE + s3_read * S3_READ) * 1e6,
            "PUT $0.005/1k, GET $0.0004/1k",
        ),
        ("SQS requests", sqs_calls * SQS_REQUEST * 1e6, f"{sqs_calls:.1f} incl. the poller's"),
        ("EventBridge", events * EVENT_PUBLISHED * 1e6, f"{events:.2f} events, $1.00 per million"),
    ]
    print(f"Requests per upload ({uploads} uploads, built-in pipeline, 3 variants):")
    for name, value in per.items():
        print(f"  {name:40} {value:6.2f}")
    print(f"  DynamoDB: {counter.wru / uploads:.1f} WRU, {counter.rru / uploads:.1f} RRU")
    print(f"  EventBridge: {events:.2f} events published")
    print(f"\nImaging per upload: {one:.0f} ms on one thread, {two:.0f} ms on two ({source});")
    print(
        f"I/O wait assumed {IO_MS_PER_UPLOAD:.0f} ms per upload (worker), fan-out "
        f"{FANOUT_MS_PER_UPLOAD:.0f} ms at {FANOUT_MB} MB."
    )
    print("\nCost per million uploads (us-east-1, arm64, on-demand):")
    for name, dollars, note in lines:
        print(f"  {name:18} ${dollars:8.2f}   {note}")
    print(f"  {'total':18} ${sum(d for _, d, _ in lines):8.2f}")
    print("\nLambda duration cost per million uploads by worker memory:")
    for memory, dollars in costs:
        fits = memory >= HEAVIEST_PEAK_MB * HEADROOM
        print(
            f"  {memory:5} MB  ${dollars:7.2f}"
            + ("" if fits else "  (cannot hold a 100 MP animated WebP)")
        )
    cheapest = min((c for c in costs if c[0] >= HEAVIEST_PEAK_MB * HEADROOM), key=lambda c: c[1])
    print(f"Recommended worker memory: {cheapest[0]} MB (${cheapest[1]:.2f} of Lambda duration).")
    return {
        "requests_per_upload": per,
        "wru": counter.wru / uploads,
        "rru": counter.rru / uploads,
        "cost_per_million": {n: d for n, d, _ in lines},
        "by_memory": dict(costs),
        "recommended_memory_mb": cheapest[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--bench-json", type=Path, help="bench/run.py --json output")
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument(
        "--function-log",
        type=Path,
        default=Path(__file__).parent / "results" / "cost_functions.log",
        help="where the handlers' logs go (appended)",
    )
    args = parser.parse_args(argv)
    counter, wall = count_requests(args.uploads, args.function_log)
    where = f"the functions' log is in {args.function_log}"
    print(f"(local run of {args.uploads} uploads: {wall:.1f} s; {where})\n")
    result = report(counter, args.uploads, imaging_ms(args.bench_json))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
