"""What dedupe saves: a folder with 50 % duplicates, run through the local stack with
``dedupe`` off and on (interleaved), the duplicates arriving after their originals were
rendered (a re-post, a re-upload). Prints the wall time and the worker's CPU time for the
duplicate half, and how many variants were copied instead of rendered.

    .venv/bin/python bench/dedupe_saving.py [--rounds 3] [--photos DIR]

The photos are those in ``../shared/corpus`` (or ``--photos``); generated photos if absent.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from pathlib import Path

from PIL import Image

from prism.aws.schema import CONTENT_PK_PREFIX
from prism.config import default_config_text
from prism_cli.local.lambda_emulator import emulators_for, forget_warm_state, run_until_idle
from prism_cli.local.stack import LocalStack
from prism_cli.local.template import find_template

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def photos(folder: Path) -> list[bytes]:
    found = sorted(p for p in folder.glob("*") if p.suffix.lower() in {".jpg", ".png", ".webp"})
    if found:
        return [p.read_bytes() for p in found]
    generated = []
    for seed in range(6):
        image = Image.effect_noise((2400, 1600), 40 + seed).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        generated.append(buffer.getvalue())
    return generated


def drain(stack: LocalStack) -> None:
    emulators = emulators_for(
        stack.template,
        stack.clients.sqs,
        instances={"WorkerFunction": 2, "FanoutFunction": 1},
        batching_window=0,
    )
    run_until_idle(emulators, stack.clients.sqs, timeout=600, poll_seconds=0.1)


def one_round(images: list[bytes], dedupe: bool) -> tuple[float, float, int]:
    """Wall and process CPU seconds for the duplicates, and the variants copied."""
    config = default_config_text() + f"\ndedupe: {str(dedupe).lower()}\n"
    forget_warm_state()  # the functions' cached config is the last stack's
    with LocalStack(find_template(None)) as stack:
        stack.put_pipeline_config(config)
        bucket, s3 = stack.bucket_name("InputBucket"), stack.clients.s3
        for index, data in enumerate(images):
            s3.put_object(Bucket=bucket, Key=f"uploads/original-{index}", Body=data)
        drain(stack)
        for index, data in enumerate(images):
            s3.put_object(Bucket=bucket, Key=f"uploads/duplicate-{index}", Body=data)
        wall, cpu = time.perf_counter(), time.process_time()
        drain(stack)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        items = stack.clients.dynamodb.scan(TableName=stack.environment["PRISM_TABLE_NAME"])
        copied = sum(
            1
            for item in items["Items"]
            if "reused_from" in item and item["sk"]["S"].startswith("VARIANT#")
        )
        assert dedupe or not any(i["pk"]["S"].startswith(CONTENT_PK_PREFIX) for i in items["Items"])
        return wall, cpu, copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--photos", type=Path, default=CORPUS)
    args = parser.parse_args()
    images = photos(args.photos)
    results: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
    for _ in range(args.rounds):
        for dedupe in (False, True):  # interleaved
            results[dedupe].append(one_round(images, dedupe))
    print(f"{len(images)} originals + {len(images)} duplicates, built-in 3 variants, 2 workers")
    for dedupe, rounds in results.items():
        wall = statistics.median(r[0] for r in rounds)
        cpu = statistics.median(r[1] for r in rounds)
        print(
            f"dedupe {'on ' if dedupe else 'off'}: duplicates in {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU; {rounds[0][2]} variants copied"
        )
    off, on = (statistics.median(r[0] for r in results[d]) for d in (False, True))
    print(f"saving on the duplicate half: {100 * (1 - on / off):.0f} % of the wall time")


if __name__ == "__main__":
    main()
