"""The parsers of the job commands: ``prism submit``, ``status``, ``cancel``, ``log``,
``pull``, ``jobs``, ``backfill``, ``redrive`` and ``config``. Each one's ``--help`` ends with
examples."""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prism_cli.arguments import Handler, Subparsers, examples, positive_int
from prism_cli.jobs import commands as job
from prism_cli.jobs.redrive import QUEUE_CHOICES

# Examples at the end of each command's --help.
EXAMPLES = {
    "submit": "prism submit photos/ --job holiday\nprism submit a/ b/ --prefix batch-1 --no-follow",
    "status": "prism status holiday\nprism status holiday --watch\nprism status holiday --json",
    "cancel": "prism cancel holiday",
    "log": (
        "prism log holiday\nprism log holiday --failed-only   # exit 1 if it lists any\n"
        "prism log holiday --json holiday.json\nprism log --load holiday.json"
    ),
    "pull": (
        "prism pull holiday --out results/\nprism pull holiday --out results/ --stack prism-prod"
    ),
    "jobs": "prism jobs\nprism jobs --limit 5\nprism jobs --json --limit 100",
    "backfill": (
        "prism backfill s3://my-input-bucket/library/ --dry-run\n"
        "prism backfill s3://my-input-bucket/library/ --variants web --missing-only"
    ),
    "redrive": "prism redrive\nprism redrive --queue variants --stack prism-prod",
    "show": "prism config show > pipeline.yaml",
    "set": "prism config set pipeline.yaml",
}


def _help_text(name: str, handler: Handler) -> tuple[str | None, str | None]:
    """A command's description (its handler's docstring) and epilog (its examples)."""
    description = inspect.cleandoc(handler.__doc__) if handler.__doc__ else None
    lines = EXAMPLES.get(name)
    return description, None if lines is None else examples(lines)


@contextmanager
def _command(
    commands: Subparsers, name: str, handler: Handler, summary: str, follow: bool | None = None
) -> Iterator[argparse.ArgumentParser]:
    """The parser of a job command run by ``handler``, whose docstring is its description
    and whose examples (:data:`EXAMPLES`) end its help, for the ``with`` body to add the
    command's own arguments. Then come the follow options (if ``follow`` is not None;
    True: with ``--no-follow``) and, last, which stack."""
    description, epilog = _help_text(name, handler)
    parser = commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=handler)
    yield parser
    if follow:
        parser.add_argument(
            "--no-follow",
            action="store_true",
            help="return once the job is sealed instead of following it to the end",
        )
    if follow is not None:
        parser.add_argument(
            "--detach-on-interrupt",
            action="store_true",
            help="Ctrl+C stops following without asking whether to cancel the job",
        )
    group = parser.add_argument_group("stack (default: $PRISM_STACK, else the local stack)")
    group.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed CloudFormation stack (uses the usual AWS credentials and region)",
    )
    group.add_argument(
        "--local",
        action="store_true",
        help="the local stack of `prism stack up` (found through .prism/local-stack.json)",
    )


def add_commands(commands: Subparsers) -> None:
    job_id, job_name = "the job's id", "the job's name (default: generated)"
    with _command(
        commands, "submit", job.submit, "upload folders as a job and follow it", True
    ) as submit:
        submit.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="input folder")
        submit.add_argument("--job", metavar="NAME", help=job_name)
        submit.add_argument(
            "--prefix", metavar="P", default="", help="key prefix below the stack's upload prefix"
        )
    with _command(
        commands, "status", job.status, "a job's progress (once, or live)", False
    ) as status:
        status.add_argument("job", metavar="JOB", help=job_id)
        status.add_argument("--watch", "-w", action="store_true", help="follow until the job ends")
        status.add_argument(
            "--json",
            action="store_true",
            help="machine-readable (one line per change with --watch)",
        )
    with _command(commands, "cancel", job.cancel, "cancel a job") as cancel:
        cancel.add_argument("job", metavar="JOB", help=job_id)
    with _command(commands, "log", job.log, "a job's processing log") as log:
        log.add_argument("job", nargs="?", metavar="JOB", help=job_id)
        log.add_argument(
            "--json", type=Path, metavar="FILE", help="write the log as JSON to FILE ('-': stdout)"
        )
        log.add_argument(
            "--failed-only",
            action="store_true",
            help="only the failures (exit 1 if there are any)",
        )
        log.add_argument("--load", type=Path, metavar="FILE", help="show a saved log")
    with _command(
        commands, "pull", job.pull, "download a job's outputs and its processing log"
    ) as pull:
        pull.add_argument("job", metavar="JOB", help=job_id)
        pull.add_argument(
            "--out",
            type=Path,
            required=True,
            metavar="DIR",
            help="where the outputs and processing_log.json go (created if need be)",
        )
    with _command(commands, "jobs", job.jobs, "list recent jobs with their counts") as jobs:
        jobs.add_argument(
            "--limit",
            type=positive_int,
            default=20,
            metavar="N",
            help="the N most recent jobs (default: 20)",
        )
        jobs.add_argument("--json", action="store_true", help="machine-readable")
    with _command(
        commands, "backfill", job.backfill, "render variants of objects already in S3", True
    ) as backfill:
        backfill.add_argument(
            "locations", nargs="+", metavar="s3://BUCKET/PREFIX", help="where the objects are"
        )
        backfill.add_argument(
            "--variants", metavar="A,B", help="only these variants (default: every one)"
        )
        backfill.add_argument(
            "--missing-only",
            action="store_true",
            help="skip variants whose output object exists already",
        )
        backfill.add_argument(
            "--dry-run",
            action="store_true",
            help="count and list what would be enqueued; create nothing",
        )
        backfill.add_argument("--job", metavar="NAME", help=job_name)
    with _command(
        commands, "redrive", job.redrive, "move dead-letter messages back to their queues"
    ) as redrive:
        redrive.add_argument(
            "--queue",
            choices=QUEUE_CHOICES,
            default="all",
            help="which queue's dead letters (default: all)",
        )

    config = commands.add_parser(
        "config",
        help="the stack's pipeline config",
        description="Show or replace the pipeline config the stack's functions run with.",
    )
    config_commands = config.add_subparsers(dest="config_command", required=True)
    with _command(config_commands, "show", job.config_show, "print the active pipeline config"):
        pass  # no arguments of its own
    with _command(
        config_commands, "set", job.config_set, "replace the pipeline config (validated first)"
    ) as put:
        put.add_argument("file", type=Path, metavar="FILE", help="pipeline config (YAML or JSON)")
