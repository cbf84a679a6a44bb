"""The ``prism`` command.

- ``prism run`` / ``prism demo``: process folders on a local stack of their own;
- ``prism stack up``: a long-running local stack the job commands use;
- ``prism submit|status|cancel|log|backfill``: jobs on the local or a deployed stack;
- ``prism redrive``: dead-letter messages back to their queues;
- ``prism config show|set``: the stack's pipeline config.

Exit status (see docs/cli.md): 0 done / job complete, 1 some files or variants failed, 2
usage or input error (one line on stderr, no traceback), 3 job cancelled, 130 Ctrl+C
(detached from a running job, or a run stopped early; its partial log is written).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from rich.console import Console

from prism import __version__
from prism_cli import job_commands
from prism_cli.errors import TemplateError, UserError
from prism_cli.exit_codes import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from prism_cli.redrive import QUEUE_CHOICES
from prism_cli.stack_target import DEFAULT_LOCAL_PORT as DEFAULT_PORT

if TYPE_CHECKING:
    from prism_cli.runner import RunResult

# ``run``, ``demo`` and ``stack up`` import moto and cfn-lint (seconds); the job commands
# do not, so those modules are imported by the commands that need them.

DEFAULT_DEMO_OUT = Path("demo-output")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other user error (argparse would add the usage first).
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be between 0 and 65535 (0: a free port)")
    return value


def _add_target(parser: argparse.ArgumentParser) -> None:
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


def _add_follow(parser: argparse.ArgumentParser, *, no_follow: bool) -> None:
    if no_follow:
        parser.add_argument(
            "--no-follow",
            action="store_true",
            help="return once the job is sealed instead of following it to the end",
        )
    parser.add_argument(
        "--detach-on-interrupt",
        action="store_true",
        help="Ctrl+C stops following without asking whether to cancel the job",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="prism",
        description="Prism image pipeline: run it locally, or submit, watch, cancel and "
        "backfill jobs on a local or deployed stack.",
    )
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    common = _Parser(add_help=False)
    common.add_argument(
        "--workers",
        type=_positive_int,
        default=4,
        metavar="N",
        help="concurrent worker instances (default: 4)",
    )
    common.add_argument(
        "--template",
        type=Path,
        metavar="FILE",
        help="the SAM template (default: the one of this Prism checkout)",
    )

    run_parser = commands.add_parser(
        "run",
        parents=[common],
        help="process image folders into an output folder",
        description="Upload every image below DIR... to a local stack of its own, let the "
        "pipeline render its variants, and download them into OUT mirroring the inputs, with "
        "OUT/processing_log.json. The stack lives as long as the command.",
    )
    run_parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="input folder")
    run_parser.add_argument(
        "--out", "-o", type=Path, required=True, metavar="OUT", help="output folder"
    )
    run_parser.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="FILE",
        help="pipeline config (YAML or JSON; default: the built-in pipeline)",
    )

    demo_parser = commands.add_parser(
        "demo",
        parents=[common],
        help="run the pipeline on a generated sample set",
        description="Generate a few sample images (and a broken one, and a text file) and "
        "process them like `prism run`, with the built-in pipeline plus a watermark.",
    )
    demo_parser.add_argument(
        "--out",
        "-o",
        type=Path,
        default=DEFAULT_DEMO_OUT,
        metavar="DIR",
        help=f"output folder (default: ./{DEFAULT_DEMO_OUT})",
    )

    # --- the local stack ------------------------------------------------------------------------
    stack_parser = commands.add_parser(
        "stack", help="a long-running local stack", description="Manage the local stack."
    )
    stack_commands = stack_parser.add_subparsers(dest="stack_command", required=True)
    up = stack_commands.add_parser(
        "up",
        help="run a local stack in the foreground until Ctrl+C",
        description="Start moto on 127.0.0.1 with every resource of template.yaml, run the "
        "fan-out and worker functions continuously, and write .prism/local-stack.json here "
        "so that submit/status/cancel/log/backfill find the stack. Ephemeral: moto keeps "
        "everything in memory, and all of it is gone when the stack stops.",
    )
    up.add_argument(
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        metavar="PORT",
        help=f"port on 127.0.0.1 (default: {DEFAULT_PORT}; 0 picks a free one)",
    )
    up.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="worker instances (default: the template's MaximumConcurrency, at most 2 per core)",
    )
    up.add_argument("--template", type=Path, metavar="FILE", help="the SAM template")
    up.add_argument(
        "--config", type=Path, metavar="FILE", help="initial pipeline config (YAML or JSON)"
    )

    # --- jobs -----------------------------------------------------------------------------------
    submit = commands.add_parser(
        "submit",
        help="upload folders as a job and follow it",
        description="Upload every image below DIR... to the stack's input bucket as one job "
        "(keys: <upload prefix><PREFIX><folder name>/<relative path>), seal the job, and "
        "follow it with live progress until it ends. Prints the job id first.",
    )
    submit.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="input folder")
    submit.add_argument("--job", metavar="NAME", help="the job's name (default: generated)")
    submit.add_argument(
        "--prefix", metavar="P", default="", help="key prefix below the stack's upload prefix"
    )
    _add_follow(submit, no_follow=True)
    _add_target(submit)

    status = commands.add_parser(
        "status",
        help="a job's progress (once, or live)",
        description="Show a job's progress per stage. --watch follows it with live progress "
        "bars until it ends (exit 0 complete, 1 complete with failures, 3 cancelled).",
    )
    status.add_argument("job", metavar="JOB", help="the job's id")
    status.add_argument("--watch", "-w", action="store_true", help="follow until the job ends")
    status.add_argument(
        "--json", action="store_true", help="machine-readable (one line per change with --watch)"
    )
    _add_follow(status, no_follow=False)
    _add_target(status)

    cancel = commands.add_parser(
        "cancel",
        help="cancel a job",
        description="Cancel a running job: variants not started yet are skipped (reason "
        "'cancelled'); work under way finishes. A job that has ended is left as it is.",
    )
    cancel.add_argument("job", metavar="JOB", help="the job's id")
    _add_target(cancel)

    log = commands.add_parser(
        "log",
        help="a job's processing log",
        description="Show a job's processing log (successful, failed with reasons, skipped), "
        "or write it as JSON in the shape of prism run's processing_log.json. "
        "--load FILE shows a saved log instead.",
    )
    log.add_argument("job", nargs="?", metavar="JOB", help="the job's id")
    log.add_argument(
        "--json", type=Path, metavar="FILE", help="write the log as JSON to FILE ('-': stdout)"
    )
    log.add_argument("--failed-only", action="store_true", help="only the failures")
    log.add_argument("--load", type=Path, metavar="FILE", help="show a saved log")
    _add_target(log)

    backfill = commands.add_parser(
        "backfill",
        help="render variants of objects already in S3",
        description="List the objects under each s3://BUCKET/PREFIX (streamed, several "
        "prefixes at once) and enqueue each one as a job, so that the pipeline renders its "
        "variants. Folders and empty objects are left out; the workers judge the rest by "
        "content.",
    )
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
    backfill.add_argument("--job", metavar="NAME", help="the job's name (default: generated)")
    _add_follow(backfill, no_follow=True)
    _add_target(backfill)

    redrive = commands.add_parser(
        "redrive",
        help="move dead-letter messages back to their queues",
        description="Move the messages of the dead-letter queue(s) back to their source "
        "queue(s), so that they are processed again once the cause of their failures is "
        "fixed. Each queue's DLQ is the one its RedrivePolicy names. Reports how many "
        "messages were moved per queue.",
    )
    redrive.add_argument(
        "--queue",
        choices=QUEUE_CHOICES,
        default="all",
        help="which queue's dead letters (default: all)",
    )
    _add_target(redrive)

    config = commands.add_parser(
        "config",
        help="the stack's pipeline config",
        description="Show or replace the pipeline config the stack's functions run with.",
    )
    config_commands = config.add_subparsers(dest="config_command", required=True)
    show = config_commands.add_parser("show", help="print the active pipeline config")
    _add_target(show)
    put = config_commands.add_parser("set", help="replace the pipeline config (validated first)")
    put.add_argument("file", type=Path, metavar="FILE", help="pipeline config (YAML or JSON)")
    _add_target(put)
    return parser


def _run_command(args: argparse.Namespace, console: Console) -> RunResult:
    from prism_cli.runner import RunOptions, run

    options = RunOptions(
        inputs=args.dirs,
        out=args.out,
        config_path=args.config,
        workers=args.workers,
        template=args.template,
    )
    return run(options, console)


def _demo_command(args: argparse.Namespace, console: Console) -> RunResult:
    from prism_cli.runner import RunOptions, RunResult, run
    from prism_cli.samples import write_samples

    config = resources.files("prism_cli").joinpath("demo_pipeline.yaml").read_text("utf-8")
    # The samples are kept next to OUT (not in it: inputs may not live inside --out) so that
    # the log's paths still open after the run; they are made afresh each time.
    samples = Path(args.out).parent / ".prism-demo-inputs" / "samples"
    shutil.rmtree(samples, ignore_errors=True)
    written = write_samples(samples)
    console.print(f"Generated {len(written)} sample files in {samples}", highlight=False)
    options = RunOptions(
        inputs=[samples],
        out=args.out,
        config_text=config,
        config_label="demo pipeline (built-in default + watermark on 'large')",
        workers=args.workers,
        template=args.template,
    )
    result = run(options, console)
    # The sample set includes a broken file on purpose: failures are part of the demo.
    if result.exit_code != EXIT_INTERRUPTED:
        result = RunResult(log=result.log, log_path=result.log_path, exit_code=EXIT_OK)
    return result


def _local_run(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.runner import print_summary

    started = time.monotonic()
    command = _run_command if args.command == "run" else _demo_command
    result = command(args, console)
    print_summary(console, result, started)
    return result.exit_code


def _stack_up(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.local_server import StackUpOptions, stack_up

    options = StackUpOptions(
        port=args.port, workers=args.workers, template=args.template, config_path=args.config
    )
    return stack_up(options, console)


_COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "run": _local_run,
    "demo": _local_run,
    "stack": _stack_up,
    "submit": job_commands.submit,
    "status": job_commands.status,
    "cancel": job_commands.cancel,
    "log": job_commands.log,
    "backfill": job_commands.backfill,
    "redrive": job_commands.redrive,
}


def _command(args: argparse.Namespace) -> Callable[[argparse.Namespace, Console], int]:
    if args.command == "config":
        return (
            job_commands.config_show if args.config_command == "show" else job_commands.config_set
        )
    return _COMMANDS[args.command]


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(file=sys.stdout)
    try:
        return _command(args)(args, console)
    except (UserError, TemplateError) as exc:
        print(f"prism: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (NoCredentialsError, NoRegionError, EndpointConnectionError) as exc:
        print(f"prism: error: {_one_line(environment_problem(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = _one_line(str(error.get("Message", exc)))
        print(f"prism: error: AWS said {error.get('Code', '?')}: {message}", file=sys.stderr)
        return EXIT_USAGE
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("prism: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``prism status --json | head``): stop quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURES


def environment_problem(exc: Exception) -> str:
    if isinstance(exc, EndpointConnectionError):
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            return f"cannot reach the local stack at {endpoint}: is `prism stack up` still running?"
        return f"cannot reach AWS: {exc}"
    if isinstance(exc, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), or use a profile with one"
    return "no AWS credentials found (set a profile or the AWS_* variables)"


if __name__ == "__main__":
    sys.exit(main())
