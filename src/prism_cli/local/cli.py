"""The parser of ``prism stack``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from prism_cli.arguments import Subparsers, bounded_int, examples, positive_int
from prism_cli.connection import DEFAULT_LOCAL_PORT


def add_commands(commands: Subparsers) -> None:
    stack = commands.add_parser(
        "stack", help="a long-running local stack", description="Manage the local stack."
    )
    stack_commands = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_commands.add_parser(
        "up",
        help="run a local stack in the foreground until Ctrl+C",
        epilog=examples(
            "prism stack up                       # then, in another terminal: prism submit DIR\n"
            "prism stack up --port 0 --workers 4\n"
            "prism stack up --sam-env env.json --sam-container-env container-env.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    up.add_argument(
        "--sam-env",
        type=Path,
        metavar="FILE",
        help="once the stack is up, write `sam local invoke --env-vars` FILE for it "
        "(see `prism stack sam-env`)",
    )
    up.add_argument(
        "--sam-container-env",
        type=Path,
        metavar="FILE",
        help="once the stack is up, write `sam local invoke --container-env-vars` FILE",
    )
    _endpoint_host_arguments(up)
    up.set_defaults(handler=_stack_up)

    sam_env = stack_commands.add_parser(
        "sam-env",
        help="write env files that point `sam local invoke` at the running local stack",
        epilog=examples(
            "prism stack sam-env --out env.json --container-env container-env.json\n"
            "prism stack sam-env --docker-network-host  # Linux: --docker-network host"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write SAM's --env-vars JSON (every variable each function declares in "
        "template.yaml, with the names and URLs of the running local stack's resources) and "
        "the --container-env-vars JSON (AWS_ENDPOINT_URL reachable from the container, dummy "
        "credentials and region: SAM passes --env-vars only for variables the template "
        "declares, and applies --container-env-vars only with --debug-port). Needs a running "
        "`prism stack up` in this folder or one above.",
    )
    sam_env.add_argument(
        "--out",
        type=Path,
        default=Path("env.json"),
        metavar="FILE",
        help="the --env-vars file (default: env.json)",
    )
    sam_env.add_argument(
        "--container-env",
        type=Path,
        default=Path("container-env.json"),
        metavar="FILE",
        help="the --container-env-vars file (default: container-env.json)",
    )
    _endpoint_host_arguments(sam_env)
    sam_env.set_defaults(handler=_stack_sam_env)
    _add_event_commands(commands)


def _endpoint_host_arguments(parser: argparse.ArgumentParser) -> None:
    from prism_cli.local.sam_env import DEFAULT_ENDPOINT_HOST, HOST_NETWORK_ENDPOINT_HOST

    hosts = parser.add_mutually_exclusive_group()
    hosts.add_argument(
        "--endpoint-host",
        default=DEFAULT_ENDPOINT_HOST,
        metavar="HOST",
        help=f"how the Lambda container reaches this machine (default: {DEFAULT_ENDPOINT_HOST})",
    )
    hosts.add_argument(
        "--docker-network-host",
        dest="endpoint_host",
        action="store_const",
        const=HOST_NETWORK_ENDPOINT_HOST,
        help=f"for `sam local invoke --docker-network host`: the endpoint on "
        f"{HOST_NETWORK_ENDPOINT_HOST}",
    )


def _add_event_commands(commands: Subparsers) -> None:
    event = commands.add_parser(
        "event",
        help="Lambda events for real objects of the local stack (for `sam local invoke -e`)",
        description="Print ready-to-invoke SQS events for objects in the running local "
        "stack's input bucket. Needs a running `prism stack up` in this folder or one above.",
    )
    event_commands = event.add_subparsers(dest="event_command", required=True)
    upload = event_commands.add_parser(
        "upload",
        help="the fan-out's event for an upload of KEY",
        epilog=examples("prism event upload uploads/cat.jpg --out upload-event.json"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the uploads-queue SQS event wrapping the S3 ObjectCreated "
        "notification of KEY in the input bucket, with the object's real ETag, size and "
        "version id, and a sequencer later than any KEY has registered.",
    )
    upload.add_argument("key", metavar="KEY", help="the object's key in the input bucket")
    upload.add_argument("--out", type=Path, metavar="FILE", help="write FILE instead of stdout")
    upload.set_defaults(handler=_event_upload)
    variant = event_commands.add_parser(
        "variant",
        help="the worker's event for variants of KEY's registered upload",
        epilog=examples(
            "prism event variant uploads/cat.jpg --variant thumbnail --new-run --out task.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the variants-queue SQS event with the tasks the fan-out plans for "
        "the registered run of KEY (its run id, job and shard) with the stack's pipeline "
        "config: one message per variant.",
    )
    variant.add_argument("key", metavar="KEY", help="the object's key in the input bucket")
    variant.add_argument(
        "--variant",
        action="append",
        dest="variants",
        metavar="NAME",
        help="a variant of the pipeline config (repeatable; default: every variant)",
    )
    variant.add_argument(
        "--new-run",
        action="store_true",
        help="first register a new run of KEY with the fan-out service, as a new upload's "
        "notification would (the stack renders its other variants), so that the worker "
        "renders these instead of skipping them as done",
    )
    variant.add_argument("--out", type=Path, metavar="FILE", help="write FILE instead of stdout")
    variant.set_defaults(handler=_event_variant)


def _stack_up(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.local.server import StackUpOptions, stack_up  # moto, cfn-lint: seconds

    options = StackUpOptions(
        port=args.port, workers=args.workers, template=args.template, config_path=args.config
    )
    if args.sam_env is not None or args.sam_container_env is not None:
        threading.Thread(
            target=_write_sam_env_when_up,
            args=(args.sam_env, args.sam_container_env, args.endpoint_host, console),
            name="prism-sam-env",
            daemon=True,
        ).start()
    return stack_up(options, console)


def _write_sam_env_when_up(
    env_path: Path | None, container_path: Path | None, host: str, console: Console
) -> None:
    """Wait for this process's connection file (the stack is up), then write the files."""
    from prism_cli.connection import CONNECTION_FILE
    from prism_cli.errors import TemplateError, UserError
    from prism_cli.local.sam_env import running_stack, sam_environment, write_json

    connection = Path.cwd().resolve() / CONNECTION_FILE
    while True:
        try:
            document: Any = json.loads(connection.read_text(encoding="utf-8"))
            if isinstance(document, dict) and document.get("pid") == os.getpid():
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    try:
        stack = running_stack(connection.parent.parent)
        environment = sam_environment(stack.load_template(), stack.endpoint, host)
        written = []
        if env_path is not None:
            written.append(str(write_json(env_path, environment.env_vars)))
        if container_path is not None:
            written.append(str(write_json(container_path, environment.container_env_vars)))
    except (OSError, UserError, TemplateError) as exc:
        console.print(f"  sam env        not written: {exc}", highlight=False, markup=False)
        return
    console.print(f"  sam env        {', '.join(written)}", highlight=False, markup=False)


def _stack_sam_env(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.local.sam_env import running_stack, write_sam_environment

    stack = running_stack()
    write_sam_environment(stack, args.out, args.container_env, args.endpoint_host)
    console.print(
        f"Wrote {args.out} (--env-vars) and {args.container_env} (--container-env-vars) "
        f"for the local stack at {stack.endpoint}.",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    return 0


def _emit(document: dict[str, Any], warnings: list[str], out: Path | None) -> int:
    for warning in warnings:
        print(f"prism: warning: {warning}", file=sys.stderr)
    text = json.dumps(document, indent=2) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return 0


def _event_upload(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.local.events import upload_event
    from prism_cli.local.sam_env import running_stack
    from prism_cli.local.stack import StackClients

    stack = running_stack()
    clients = StackClients(stack.endpoint, stack.region)
    generated = upload_event(stack.load_template(), clients.s3, clients.dynamodb, args.key)
    return _emit(generated.event, generated.warnings, args.out)


def _event_variant(args: argparse.Namespace, console: Console) -> int:
    from prism_cli.aws_env import applied_environment, endpoint_environment
    from prism_cli.local.events import new_run_variant_event, variant_event
    from prism_cli.local.sam_env import running_stack
    from prism_cli.local.stack import StackClients

    stack = running_stack()
    clients = StackClients(stack.endpoint, stack.region)
    make = new_run_variant_event if args.new_run else variant_event
    with applied_environment(endpoint_environment(stack.endpoint, stack.region)):
        generated = make(
            stack.load_template(),
            clients.s3,
            clients.dynamodb,
            clients.ssm,
            args.key,
            args.variants,
        )
    return _emit(generated.event, generated.warnings, args.out)
