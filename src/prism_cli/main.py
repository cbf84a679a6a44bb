"""The ``prism`` command.

- ``prism run`` / ``prism demo``: process folders on a local stack of their own;
- ``prism stack up``: a long-running local stack the job commands use (``stack sam-env``
  and ``event upload|variant``: files for ``sam local invoke`` against it);
- ``prism submit|status|cancel|log|backfill|pull|jobs``: jobs on the local or a deployed
  stack;
- ``prism redrive``: dead-letter messages back to their queues;
- ``prism config show|set``: the stack's pipeline config.

Each command group builds its own parsers (:mod:`prism_cli.run.cli`,
:mod:`prism_cli.local.cli`, :mod:`prism_cli.jobs.cli`); this module composes them and maps
errors to exit statuses (see docs/cli.md): 0 done / job complete, 1 some files or variants
failed, 2 usage or input error (one line on stderr, no traceback), 3 job cancelled, 130
Ctrl+C (detached from a running job, or a run stopped early; its partial log is written).

``run``, ``demo`` and ``stack up`` import moto and cfn-lint (seconds) when they run; the job
commands never do.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from rich.console import Console

from prism import __version__
from prism_cli.arguments import Parser, examples
from prism_cli.errors import TemplateError, UserError, aws_error
from prism_cli.exit_codes import EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_USAGE
from prism_cli.jobs import cli as jobs_cli
from prism_cli.local import cli as local_cli
from prism_cli.run import cli as run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="prism",
        description="Prism image pipeline: run it locally, or submit, watch, cancel and "
        "backfill jobs on a local or deployed stack.",
    )
    parser.add_argument("--version", action="version", version=f"prism {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (run_cli, local_cli, jobs_cli):
        group.add_commands(commands)
    completion = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script for SHELL, made from prism's own parser.",
        epilog=examples(
            'eval "$(prism completion bash)"          # in ~/.bashrc\n'
            "prism completion zsh > ~/.zfunc/_prism   # with ~/.zfunc in $fpath"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"), metavar="SHELL")
    completion.set_defaults(handler=lambda args, console: _print_completion(parser, args.shell))
    return parser


def _print_completion(parser: argparse.ArgumentParser, shell: str) -> int:
    import shtab  # only here: no command but this one needs it

    print(shtab.complete(parser, shell=shell))
    return 0


def _one_line(message: str) -> str:
    return " ".join(message.split())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(file=sys.stdout)
    try:
        code: int = args.handler(args, console)
        return code
    except (UserError, TemplateError) as exc:
        print(f"prism: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (NoCredentialsError, NoRegionError, EndpointConnectionError) as exc:
        print(f"prism: error: {_one_line(environment_problem(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except ClientError as exc:
        print(f"prism: error: AWS said {_one_line(aws_error(exc))}", file=sys.stderr)
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
