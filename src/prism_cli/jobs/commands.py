"""The job commands: ``prism submit``, ``status``, ``cancel``, ``log``, ``pull``, ``jobs``,
``backfill``, ``redrive``, ``config``.

Each resolves its stack (:mod:`prism_cli.jobs.target`), then talks to it with aioboto3 in
one event loop. Exit statuses are in :mod:`prism_cli.exit_codes`; the parsers, in
:mod:`prism_cli.jobs.cli`, whose ``--help`` descriptions are the commands' docstrings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import boto3
from botocore.exceptions import ClientError, EndpointConnectionError
from rich.console import Console
from rich.markup import escape

from prism.aws.clients import RETRY_CONFIG, Clients, open_clients
from prism.aws.errors import error_code
from prism.aws.job_table import JobTable
from prism.config import PipelineConfig
from prism.jobs import ACTIVE_STATUSES, JobKind, JobNotFound, JobProgress, JobStatus
from prism_cli.config_files import read_config_file
from prism_cli.errors import UserError
from prism_cli.exit_codes import (
    EXIT_CANCELLED,
    EXIT_FAILURES,
    EXIT_INTERRUPTED,
    EXIT_OK,
)
from prism_cli.interrupts import Interrupts, interactive
from prism_cli.jobs.display import format_duration, snapshot_view
from prism_cli.jobs.downloads import prepare_output_folder
from prism_cli.jobs.feed import BackfillFeeder, Feeder, UploadFeeder, UploadItem, list_sources
from prism_cli.jobs.ids import check_job_id, create_job, new_job_id
from prism_cli.jobs.inputs import check_input_folders, scan_folders
from prism_cli.jobs.listing import job_document, print_jobs, recent_jobs
from prism_cli.jobs.log import (
    build_job_log,
    has_failures,
    print_log,
    read_job_records,
    summary_line,
)
from prism_cli.jobs.monitor import (
    FollowPolicy,
    FollowResult,
    JobMonitor,
    current_progress,
    feed_and_follow,
    final_view,
)
from prism_cli.jobs.processing_log import ProcessingLog
from prism_cli.jobs.pull import PullResult, pull_job
from prism_cli.jobs.redrive import RedriveResult, queue_names, redrive_pairs
from prism_cli.jobs.redrive import redrive as redrive_queue
from prism_cli.jobs.s3_urls import S3Location, s3_url
from prism_cli.jobs.stack_config import (
    active_config,
    check_config_text,
    check_variant_names,
    logged_config,
    read_config_text,
    shown_config_text,
    write_config_text,
)
from prism_cli.jobs.target import StackTarget, resolve_target
from prism_cli.jobs.view import progress_document, render_view
from prism_cli.report import write_report

T = TypeVar("T")
DRY_RUN_SHOWN = 20
# Missing variants named per object in a ``--missing-only --dry-run`` before "... and N more".
DRY_RUN_VARIANTS_SHOWN = 10
# HEAD requests at once when a dry run looks for missing outputs.
DRY_RUN_HEADS = 32

EXIT_BY_STATUS = {
    JobStatus.COMPLETE.value: EXIT_OK,
    JobStatus.COMPLETE_WITH_FAILURES.value: EXIT_FAILURES,
    JobStatus.CANCELLED.value: EXIT_CANCELLED,
}


def target_of(args: argparse.Namespace) -> StackTarget:
    return resolve_target(getattr(args, "stack", None), local=getattr(args, "local", False))


def on_stack(target: StackTarget, flow: Callable[[], Awaitable[T]]) -> T:
    """Run ``flow`` in an event loop with the stack's environment applied."""
    with target.applied():
        try:
            return asyncio.run(_wrapped(flow))
        except EndpointConnectionError as exc:
            hint = "; is `prism stack up` still running?" if target.local else ""
            raise UserError(f"cannot reach {target.label} ({exc}){hint}") from None


def on_table(target: StackTarget, flow: Callable[[Clients, JobTable], Awaitable[T]]) -> T:
    """:func:`on_stack`, ``flow`` given the clients and the stack's job table."""

    async def opened() -> T:
        async with open_clients() as clients:
            table = JobTable(
                clients.dynamodb, target.table_name, retention_days=target.record_retention_days
            )
            return await flow(clients, table)

    return on_stack(target, opened)


async def _wrapped(flow: Callable[[], Awaitable[T]]) -> T:
    try:
        return await flow()
    except JobNotFound as exc:
        raise UserError(str(exc)) from None


def exit_code_for(progress: JobProgress) -> int:
    return EXIT_BY_STATUS.get(progress.job.status, EXIT_OK)


def _policy(args: argparse.Namespace) -> FollowPolicy:
    return FollowPolicy.for_job_command(
        interactive=interactive(), detach_on_interrupt=args.detach_on_interrupt
    )


def _say(console: Console, text: str) -> None:
    console.print(text, highlight=False, soft_wrap=True)


def _ended(console: Console, result: FollowResult) -> int:
    """The closing lines of a followed job, and the exit status."""
    progress = result.progress
    job_id = progress.job.job_id
    if result.detached:
        _say(
            console,
            f"Detached: job {job_id} keeps running. Follow it with "
            f"`prism status {job_id} --watch`, cancel it with `prism cancel {job_id}`.",
        )
        return EXIT_INTERRUPTED
    view = final_view(progress)
    counters = progress.counters
    _say(
        console,
        f"Job {job_id} {progress.job.status} in {format_duration(view.elapsed_seconds)}: "
        f"{counters.sources_finished} sources; variants {counters.variants_done} done, "
        f"{counters.variants_failed} failed, {counters.variants_skipped} skipped. "
        f"Log: `prism log {job_id}`",
    )
    return exit_code_for(progress)


# --- feeding and following ----------------------------------------------------------------------
async def _start_job(
    table: JobTable, target: StackTarget, job_id: str, kind: JobKind, description: str
) -> None:
    """Create the job and print its id, first and alone on its line: easy to capture."""
    await create_job(table, job_id, kind, description, shards=target.job_counter_shards)
    print(job_id, flush=True)


async def _feed_and_follow(
    console: Console, table: JobTable, feeder: Feeder, args: argparse.Namespace
) -> int:
    job_id = feeder.job_id
    async with Interrupts() as interrupts:
        result, sent = await feed_and_follow(
            table, feeder, console, interrupts, _policy(args), no_follow=args.no_follow
        )
    for item, why in feeder.failures:
        _say(console, f"  [red]not sent[/]  {escape(item)}: {escape(why)}")
    if feeder.stopped:
        _say(console, f"Stopped early: the job has {sent} of its sources.")
    if args.no_follow and result.progress.job.status in ACTIVE_STATUSES:
        _say(
            console,
            f"Job {job_id} sealed with {sent} sources. Follow it with "
            f"`prism status {job_id} --watch`.",
        )
        code = EXIT_OK
    else:
        code = _ended(console, result)
    if feeder.failures and code == EXIT_OK:
        code = EXIT_FAILURES
    return code


# --- submit --------------------------------------------------------------------------------------
def submit(args: argparse.Namespace, console: Console) -> int:
    """Upload every image below DIR... to the stack's input bucket as one job (keys:
    <upload prefix><PREFIX><folder name>/<relative path>), seal the job, and follow it with
    live progress until it ends. Prints the job id first."""
    folders = check_input_folders(args.dirs)
    job_id = check_job_id(args.job) if args.job else new_job_id()
    scan = scan_folders(folders)
    if not scan.files:
        what = "no files" if not scan.skipped and not scan.failed else "no supported images"
        raise UserError(f"{what} found in {', '.join(map(str, folders))}")
    target = target_of(args)
    items = [
        UploadItem(file.key(target.upload_prefix, args.prefix), file.path, file.display)
        for file in scan.files
    ]

    async def flow(clients: Clients, table: JobTable) -> int:
        description = "submit " + " ".join(str(folder) for folder in folders)
        await _start_job(table, target, job_id, JobKind.SUBMIT, description)
        _say(
            console,
            f"Uploading {len(items)} files to {escape(target.label)} "
            f"({len(scan.skipped)} not images, {len(scan.failed)} unreadable: not sent)",
        )
        feeder = UploadFeeder(table, job_id, clients.s3, target.input_bucket, items)
        code = await _feed_and_follow(console, table, feeder, args)
        keys = [item.key for item in items]
        _say(console, escape(await _download_hint(target, args, job_id, keys)))
        return code

    return on_table(target, flow)


async def _download_hint(
    target: StackTarget, args: argparse.Namespace, job_id: str, source_keys: list[str]
) -> str:
    """How to get the job's outputs: ``prism pull``, and for a local stack the ``aws s3 cp``
    equivalent (every object under the outputs' common prefix)."""
    stack = f" --stack {args.stack}" if getattr(args, "stack", None) else ""
    hint = f"Download the outputs: prism pull {job_id} --out DIR{stack}"
    if not target.local:
        return hint
    try:
        config: PipelineConfig | None = await active_config(target)
    except UserError:  # an invalid config: the job's failures say so; hint at the bucket
        config = None
    prefix = _common_prefix(config, source_keys, target.upload_prefix) if config else ""
    return (
        f"{hint}\n  or: aws s3 cp --recursive {s3_url(target.output_bucket, prefix)} DIR "
        f"--endpoint-url {target.endpoint}"
    )


def _common_prefix(config: PipelineConfig, source_keys: list[str], upload_prefix: str) -> str:
    """The longest folder prefix of every output key the sources' variants get."""
    keys = [
        config.output_key_for(key, variant, upload_prefix)
        for key in source_keys
        for variant in config.variants
    ]
    folders = [key.split("/")[:-1] for key in keys]
    common: list[str] = []
    for parts in zip(*folders, strict=False):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return "".join(f"{part}/" for part in common)


# --- status --------------------------------------------------------------------------------------
def status(args: argparse.Namespace, console: Console) -> int:
    """Show a job's progress per stage. --watch follows it with live progress bars until it
    ends (exit 0 complete, 1 complete with failures, 3 cancelled)."""
    target = target_of(args)

    async def flow(clients: Clients, table: JobTable) -> int:
        progress = await current_progress(table, args.job)
        if not args.watch:
            view = snapshot_view(progress, datetime.now(UTC))
            if args.json:
                print(json.dumps(progress_document(progress, view), indent=2))
            else:
                console.print(render_view(view))
            return EXIT_OK
        if args.json:
            return await _watch_json(table, args.job)
        async with Interrupts() as interrupts:
            monitor = JobMonitor(table, args.job, console, interrupts, _policy(args))
            result = await monitor.follow()
        return _ended(console, result)

    return on_table(target, flow)


async def _watch_json(table: JobTable, job_id: str) -> int:
    """One JSON document per line whenever the job's figures change; Ctrl+C detaches."""
    async with Interrupts() as interrupts:
        last: str | None = None
        while True:
            progress = await current_progress(table, job_id)
            view = snapshot_view(progress, datetime.now(UTC))
            document = progress_document(progress, view)
            comparable = json.dumps({**document, "elapsed_seconds": None}, sort_keys=True)
            if comparable != last:
                print(json.dumps(document), flush=True)
                last = comparable
            if progress.job.status not in ACTIVE_STATUSES:
                return exit_code_for(progress)
            if await interrupts.wait(1.0):
                return EXIT_INTERRUPTED


# --- cancel --------------------------------------------------------------------------------------
def cancel(args: argparse.Namespace, console: Console) -> int:
    """Cancel a running job: variants not started yet are skipped (reason 'cancelled'); work
    under way finishes. A job that has ended is left as it is."""
    target = target_of(args)

    async def flow(clients: Clients, table: JobTable) -> int:
        job = await table.require(args.job)
        if job.status not in ACTIVE_STATUSES:
            _say(console, f"Job {job.job_id} has already ended: {job.status}")
            return EXIT_OK
        if job.status == JobStatus.CANCELLING:
            _say(console, f"Job {job.job_id} is being cancelled already")
        else:
            await table.request_cancel(args.job)
        progress = await current_progress(table, args.job)
        _say(
            console,
            f"Job {progress.job.job_id}: {progress.job.status}"
            + (
                " (work not started yet is skipped; "
                f"`prism status {args.job} --watch` follows it to the end)"
                if progress.job.status in ACTIVE_STATUSES
                else ""
            ),
        )
        return EXIT_OK

    return on_table(target, flow)


# --- log -----------------------------------------------------------------------------------------
def log(args: argparse.Namespace, console: Console) -> int:
    """Show a job's processing log (successful, failed with reasons, skipped), or write it as
    JSON in the shape of prism run's processing_log.json. --load FILE shows a saved log
    instead."""
    if args.load is not None:
        if args.job:
            raise UserError("pass either JOB or --load FILE, not both")
        try:
            loaded = ProcessingLog.load(args.load)
        except OSError as exc:
            raise UserError(f"cannot read {args.load}: {exc.strerror}") from None
        except ValueError as exc:
            first = str(exc).splitlines()[0]
            raise UserError(f"{args.load} is not a processing log: {first}") from None
        print_log(console, loaded, failed_only=args.failed_only)
        return _log_exit(loaded, args.failed_only)
    if not args.job:
        raise UserError("name a job (prism log JOB) or a saved log (prism log --load FILE)")
    target = target_of(args)

    async def flow(clients: Clients, table: JobTable) -> ProcessingLog:
        job = await table.require(args.job)
        records = await read_job_records(table, job)
        config = (await logged_config(target))[1]
        return build_job_log(
            job, records, target.output_bucket, config=config, failed_only=args.failed_only
        )

    job_log = on_table(target, flow)
    if args.json is None:
        print_log(console, job_log, failed_only=args.failed_only)
    elif str(args.json) == "-":
        print(job_log.model_dump_json(indent=2))
    else:
        try:
            job_log.save(args.json)
        except OSError as exc:
            raise UserError(f"cannot write {args.json}: {exc.strerror}") from None
        _say(console, f"Wrote {escape(str(args.json))}: {summary_line(job_log)}")
    return _log_exit(job_log, args.failed_only)


def _log_exit(job_log: ProcessingLog, failed_only: bool) -> int:
    """``--failed-only`` exits 1 when it lists failures (0 when there are none), so that a
    script can tell; the whole log exits 0."""
    return EXIT_FAILURES if failed_only and has_failures(job_log) else EXIT_OK


# --- pull ----------------------------------------------------------------------------------------
def pull(args: argparse.Namespace, console: Console) -> int:
    """Download a job's outputs into DIR (only that job's: the variants its records say are
    done), laid out as prism run lays them out (DIR/<output key without the config's output
    prefix>), and write its processing_log.json and report.html there. Exit 1 if any
    variant failed or could not be downloaded."""
    out: Path = args.out
    target = target_of(args)

    async def flow(clients: Clients, table: JobTable) -> PullResult:
        job = await table.require(args.job)
        records = await read_job_records(table, job)
        config, config_text = await logged_config(target)
        prepare_output_folder(out)
        s3 = boto3.client("s3", config=RETRY_CONFIG)  # downloads stream on threads
        return await asyncio.to_thread(
            pull_job,
            s3,
            job,
            records,
            output_bucket=target.output_bucket,
            out=out,
            output_prefix=config.output_prefix if config else "",
            config_text=config_text,
        )

    result = on_table(target, flow)
    job_log = result.log
    try:
        report = write_report(out, job_log)
    except OSError as exc:
        raise UserError(f"cannot write the report in {out}: {exc.strerror or exc}") from None
    _say(
        console,
        f"Pulled {result.downloaded} outputs of job {escape(job_log.job or args.job)} into "
        f"{escape(str(out))}"
        + (f" ([red]{result.failed_downloads} failed[/])" if result.failed_downloads else "")
        + f"; log: {escape(str(result.log_path))}, report: {escape(str(report))}",
    )
    _say(console, escape(summary_line(job_log)))
    if job_log.pending:
        _say(
            console,
            f"The job is still running: pull again once it ends "
            f"(`prism status {args.job} --watch`).",
        )
    return EXIT_FAILURES if has_failures(job_log) else EXIT_OK


# --- jobs ----------------------------------------------------------------------------------------
def jobs(args: argparse.Namespace, console: Console) -> int:
    """List the stack's jobs, most recent first: status, sources finished of expected,
    variants done/failed/skipped, and age. Reads the whole processing table (a Scan)."""
    target = target_of(args)

    async def flow(clients: Clients, table: JobTable) -> list[JobProgress]:
        return await recent_jobs(clients.dynamodb, table, target.table_name, args.limit)

    found = on_table(target, flow)
    now = datetime.now(UTC)
    if args.json:
        print(json.dumps([job_document(progress, now) for progress in found], indent=2))
    else:
        print_jobs(console, found, now)
    return EXIT_OK


# --- backfill ------------------------------------------------------------------------------------
def backfill(args: argparse.Namespace, console: Console) -> int:
    """List the objects under each s3://BUCKET/PREFIX (streamed, several prefixes at once)
    and enqueue each one as a job, so that the pipeline renders its variants. Folders and
    empty objects are left out; the workers judge the rest by content."""
    locations = [S3Location.parse(text) for text in args.locations]
    names = [name.strip() for name in (args.variants or "").split(",") if name.strip()]
    if args.variants is not None and not names:
        raise UserError("--variants needs at least one variant name")
    job_id = check_job_id(args.job) if args.job else new_job_id()
    target = target_of(args)
    _refuse_output_bucket(locations, target)

    async def flow(clients: Clients, table: JobTable) -> int:
        variants = check_variant_names(await active_config(target), names) if names else None
        if args.dry_run:
            config = await active_config(target) if args.missing_only else None
            return await _dry_run(console, clients, target, locations, variants, config)
        description = " ".join(
            ["backfill", *map(str, locations)]
            + ([f"--variants {','.join(variants)}"] if variants else [])
            + (["--missing-only"] if args.missing_only else [])
        )
        await _start_job(table, target, job_id, JobKind.BACKFILL, description)
        _say(console, f"Enqueuing the objects of {', '.join(map(str, locations))}")
        feeder = BackfillFeeder(
            table,
            job_id,
            clients.s3,
            clients.sqs,
            target.uploads_queue_url,
            locations,
            variants=variants,
            missing_only=args.missing_only,
        )
        return await _feed_and_follow(console, table, feeder, args)

    return on_table(target, flow)


def _refuse_output_bucket(locations: list[S3Location], target: StackTarget) -> None:
    """Outputs are not sources: backfilling them would render variants of variants (and
    their outputs would land next to them, to be picked up by the next backfill)."""
    for location in locations:
        if location.bucket == target.output_bucket:
            raise UserError(
                f"{location} is in the output bucket of {target.label}; backfill renders "
                f"sources, such as s3://{target.input_bucket}/{target.upload_prefix}"
            )


async def _dry_run(
    console: Console,
    clients: Clients,
    target: StackTarget,
    locations: list[S3Location],
    variants: list[str] | None,
    missing_config: PipelineConfig | None,
) -> int:
    """Count (and list the first of) the objects a backfill would enqueue. With
    ``missing_config`` (``--missing-only``), each object's variants whose output is not in
    the output bucket are looked up and named."""
    count, shown = 0, list[str]()
    missing: list[tuple[str, list[str]]] = []  # (object URL, its missing variants)
    complete = 0
    started = time.monotonic()
    heads = asyncio.Semaphore(DRY_RUN_HEADS)

    async def missing_of(key: str) -> list[str]:
        assert missing_config is not None
        wanted = [v for v in missing_config.variants if variants is None or v.name in variants]

        async def absent(name: str, output_key: str) -> str | None:
            async with heads:
                exists = await _object_exists(clients, target.output_bucket, output_key)
            return None if exists else name

        found = await asyncio.gather(
            *(
                absent(v.name, missing_config.output_key_for(key, v, target.upload_prefix))
                for v in wanted
            )
        )
        return [name for name in found if name is not None]

    for location in locations:
        async for source in list_sources(clients.s3, location):
            count += 1
            url = s3_url(source.bucket, source.key)
            if missing_config is None:
                if len(shown) < DRY_RUN_SHOWN:
                    shown.append(url)
                continue
            names = await missing_of(source.key)
            if names:
                missing.append((url, names))
            else:
                complete += 1
    which = ", ".join(variants) if variants else "every variant"
    _say(
        console,
        f"Dry run: would enqueue {count} objects ({which}"
        + ("; missing outputs only" if missing_config is not None else "")
        + f"); listed in {time.monotonic() - started:.1f} s. Nothing was created.",
    )
    if missing_config is not None:
        _say(
            console,
            f"{len(missing)} objects miss outputs "
            f"({sum(len(names) for _, names in missing)} variants); "
            f"{complete} have every output already.",
        )
        for url, names in missing[:DRY_RUN_SHOWN]:
            _say(console, f"  {escape(url)}: missing {escape(_capped(names))}")
        more = len(missing) - DRY_RUN_SHOWN
    else:
        for url in shown:
            _say(console, f"  {escape(url)}")
        more = count - len(shown)
    if more > 0:
        _say(console, f"  … and {more} more")
    return EXIT_OK


def _capped(names: list[str]) -> str:
    """``a, b, c`` or, past :data:`DRY_RUN_VARIANTS_SHOWN` names, ``a, b, … and N more``."""
    shown = ", ".join(names[:DRY_RUN_VARIANTS_SHOWN])
    more = len(names) - DRY_RUN_VARIANTS_SHOWN
    return f"{shown}, … and {more} more" if more > 0 else shown


async def _object_exists(clients: Clients, bucket: str, key: str) -> bool:
    try:
        await clients.s3.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


# --- redrive -------------------------------------------------------------------------------------
def redrive(args: argparse.Namespace, console: Console) -> int:
    """Move the messages of the dead-letter queue(s) back to their source queue(s), so that
    they are processed again once the cause of their failures is fixed. Each queue's DLQ is
    the one its RedrivePolicy names. Reports how many messages were moved per queue."""
    target = target_of(args)
    names = queue_names(args.queue)

    async def flow() -> list[RedriveResult]:
        async with open_clients() as clients:
            pairs = await redrive_pairs(clients.sqs, target, names)
            # moto has no StartMessageMoveTask; SQS moves messages itself, server side.
            return [
                await redrive_queue(
                    clients.sqs, pair, move_task=not target.local, wait=0 if target.local else 1
                )
                for pair in pairs
            ]

    code = EXIT_OK
    for result in on_stack(target, flow):
        pair = result.pair
        if result.moved or result.refused or result.still_moving:
            _say(
                console,
                f"{pair.name}: {result.moved} messages moved from {pair.dlq_name} "
                f"back to {pair.queue_name}"
                + (" so far; the move task carries on in SQS" if result.still_moving else ""),
            )
        else:
            _say(console, f"{pair.name}: nothing to move ({pair.dlq_name} is empty)")
        if result.refused or result.refusal:
            _say(
                console,
                f"  [red]{result.refused} not moved[/] (left in {pair.dlq_name}): "
                f"{escape(result.refusal)}",
            )
            code = EXIT_FAILURES
        if result.undeleted:
            _say(
                console,
                f"  [yellow]{result.undeleted} sent but still in {pair.dlq_name}[/] (could not "
                "delete them): they may be processed twice",
            )
            code = EXIT_FAILURES
    return code


# --- config --------------------------------------------------------------------------------------
def config_show(args: argparse.Namespace, console: Console) -> int:
    """Print the pipeline config the stack's functions run with, as YAML (or JSON, as it
    was set). A stack on the built-in config gets its YAML, after a comment line saying
    it is the built-in default."""
    target = target_of(args)
    text = on_stack(target, lambda: read_config_text(target))
    sys.stdout.write(shown_config_text(text, target.config_parameter))
    return EXIT_OK


def config_set(args: argparse.Namespace, console: Console) -> int:
    """Validate FILE (YAML or JSON) as the functions would, then make it the stack's
    pipeline config. An invalid file is a one-line error naming it; the stack keeps its
    config."""
    path: Path = args.file
    text = read_config_file(path)
    check_config_text(text, str(path))  # before finding the stack: errors name the file
    target = target_of(args)
    on_stack(target, lambda: write_config_text(target, text, str(path)))
    _say(
        console,
        f"Pipeline config of {escape(target.label)} replaced by {escape(str(path))} "
        "(functions pick it up within their config cache time)",
    )
    return EXIT_OK
