"""Worker orchestration CPU per variant message: the CPU time of the handler's own thread
(event parsing, the SDK calls through aiobotocore, records and events; not the Pillow
threads, not the moto server's threads) per message, on the local stack.

    .venv/bin/python bench/orchestration_cpu.py [--sources 60] [--function-log FILE]

Small generated images (so what is measured is the orchestration, not the imaging);
the built-in 3 variants; batches of 10 messages, as the template's event source. The
handlers' logs and metrics go to ``--function-log`` (``bench/results/orchestration_functions.log``).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image

from prism.messages import sqs_batches
from prism_cli.local.function_log import function_output_to
from prism_cli.local.lambda_emulator import (
    FakeLambdaContext,
    emulators_for,
    load_function_handler,
    run_until_idle,
    sqs_event,
    warm_container,
)
from prism_cli.local.stack import LocalStack
from prism_cli.local.template import find_template


def small_jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((320, 240), 30 + seed % 50).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=60)
    parser.add_argument(
        "--function-log",
        type=Path,
        default=Path(__file__).parent / "results" / "orchestration_functions.log",
    )
    args = parser.parse_args()
    args.function_log.parent.mkdir(parents=True, exist_ok=True)
    with function_output_to(args.function_log), LocalStack(find_template(None)) as stack:
        s3, sqs = stack.clients.s3, stack.clients.sqs
        bucket = stack.bucket_name("InputBucket")
        for index in range(args.sources):
            s3.put_object(Bucket=bucket, Key=f"uploads/p{index:04d}.jpg", Body=small_jpeg(index))
        fanouts = [
            e
            for e in emulators_for(stack.template, sqs, batching_window=0)
            if e.function.logical_id == "FanoutFunction"
        ]
        run_until_idle(fanouts, sqs, timeout=300, poll_seconds=0.1)
        url = stack.queue_url("VariantsQueue")
        messages = []
        while batch := sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
        ).get("Messages", []):
            messages.extend(batch)
        worker = stack.template.function("WorkerFunction")
        handler = load_function_handler(worker)
        arn = stack.template.queue("VariantsQueue").arn
        per_message = []
        with warm_container(worker.handler_path.parent):  # one loop, clients kept: warm
            for chunk in sqs_batches(messages):
                started = time.thread_time()
                event = sqs_event(chunk, arn, "us-east-1")
                handler(event, FakeLambdaContext.for_function(worker))
                per_message.append((time.thread_time() - started) * 1000 / len(chunk))
    print(
        f"{len(messages)} variant messages in {len(per_message)} batches: handler-thread CPU "
        f"median {statistics.median(per_message):.1f} ms per message "
        f"(first batch, cold: {per_message[0]:.1f} ms; target <= 5 ms)"
    )


if __name__ == "__main__":
    main()
