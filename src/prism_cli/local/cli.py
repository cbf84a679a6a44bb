"""The parser of ``prism stack``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from prism_cli.arguments import Subparsers, bounded_int, positive_int
from prism_cli.connection import DEFAULT_LOCAL_PORT


def add_commands(commands: Subparsers) -> None:
    stack = commands.add_parser(
        "stack", help="a long-running local stack", description="Manage the local stack."
    )
    stack_commands = stack.add_subparsers(dest="stack_command", required=True)
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
        type=bounded_int(0, 65535, "a port number", "must be between 0 and 65535 (0: a free port)"),
        default=DEFAULT_LOCAL_PORT,
        metavar="PORT",
        help=f"port on 127.0.0.1 (default: {DEFAULT_LOCAL_PORT}; 0 picks a free one)",
    )
    up.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker instances (default: the template's MaximumConcurrency, at most 2 per core)",
    )
    up.add_argument("--template", type=Path, metavar="FILE", help="the SAM template")
    up.add_argument(
        "--config", type=Path, metavar="FILE", help="initial pipeline config (YAML or JSON)"
    )
    up.set_defaults(handler=_stack_up)


def _stack_up(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.local.server import StackUpOptions, stack_up  # moto, cfn-lint: seconds

    options = StackUpOptions(
        port=args.port, workers=args.workers, template=args.template, config_path=args.config
    )
    return stack_up(options, console)
