"""``prism stack up``: a long-running local stack in the foreground.

A moto server on 127.0.0.1 holds the resources of ``template.yaml``; emulated SQS event
sources run the fan-out and worker handlers continuously, in this process. A connection
file (``.prism/local-stack.json`` in the current folder) tells other ``prism`` commands
where the stack is. Ctrl+C (or SIGTERM) stops it and removes the file.

moto keeps everything in memory: the stack, its jobs and its objects are gone when it stops.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from prism_cli.aws_env import applied_environment
from prism_cli.config_files import load_config
from prism_cli.connection import (
    CONNECTION_FILE,
    DEFAULT_LOCAL_PORT,
    process_alive,
    write_connection_file,
)
from prism_cli.errors import UserError
from prism_cli.interrupts import signal_handlers
from prism_cli.local.function_log import function_output_to
from prism_cli.local.lambda_emulator import SqsEventSourceEmulator, function_instances
from prism_cli.local.stack import LocalStack, MotoServer, PortInUse, reset_moto
from prism_cli.local.template import find_template

FUNCTION_LOG = CONNECTION_FILE.parent / "functions.log"
# Locally a config change should show quickly; deployed functions use the setting's default.
_LOCAL_CONFIG_CACHE_SECONDS = "5"


@dataclass(frozen=True)
class StackUpOptions:
    port: int = DEFAULT_LOCAL_PORT
    workers: int | None = None  # default: MaximumConcurrency, capped by twice the cores
    template: Path | None = None
    config_path: Path | None = None


def _running_elsewhere(path: Path) -> str | None:
    """A description of the live stack that owns ``path``, if any."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pid = document.get("pid") if isinstance(document, dict) else None
    if isinstance(pid, int) and pid != os.getpid() and process_alive(pid):
        return f"process {pid} at {document.get('endpoint')}"
    return None


def stack_up(options: StackUpOptions, console: Console) -> int:
    template_path = find_template(options.template)
    config_text, config_label, _ = load_config(options.config_path)
    folder = Path.cwd().resolve()
    connection = folder / CONNECTION_FILE
    owner = _running_elsewhere(connection) if connection.is_file() else None
    if owner:
        raise UserError(f"a local stack is already running here ({owner}); stop it first")
    stop = threading.Event()
    try:
        server = MotoServer(options.port)
    except PortInUse as exc:
        raise UserError(f"{exc}; pass --port N, or --port 0 for a free one") from None
    connection.parent.mkdir(parents=True, exist_ok=True)
    cache = os.environ.get("PRISM_CONFIG_CACHE_SECONDS", _LOCAL_CONFIG_CACHE_SECONDS)
    emulators: Sequence[SqsEventSourceEmulator] = []
    try:
        with (
            signal_handlers(lambda signum, frame: stop.set(), signal.SIGINT, signal.SIGTERM),
            applied_environment({"PRISM_CONFIG_CACHE_SECONDS": cache}),
            function_output_to(folder / FUNCTION_LOG),
        ):
            reset_moto(server.endpoint)  # moto's state is per process: start from nothing
            with LocalStack(template_path, endpoint=server.endpoint) as stack:
                if config_text is not None:
                    stack.put_pipeline_config(config_text)
                instances = function_instances(stack.template, options.workers)
                with stack.running_functions(instances, join_timeout=30) as emulators:
                    try:
                        write_connection_file(
                            connection,
                            endpoint=server.endpoint,
                            region=stack.template.context.region,
                            stack_name=stack.template.context.stack_name,
                            outputs=stack.template.outputs,
                            parameters=stack.template.parameters,
                            template=template_path,
                        )
                        _announce(console, stack, emulators, connection, config_label)
                        while not stop.wait(0.5):
                            pass
                        console.print("Stopping the local stack...", highlight=False)
                    finally:
                        if _running_elsewhere(connection) is None:
                            connection.unlink(missing_ok=True)
    finally:
        # Drop moto's state before the server: freeing it piecemeal at interpreter exit
        # (millions of small objects after a few jobs) can take minutes.
        with contextlib.suppress(OSError):
            reset_moto(server.endpoint)
        server.stop()
    errors = sum(emulator.stats.errors for emulator in emulators)
    console.print(
        "Local stack stopped; its buckets, queues and jobs are gone (moto keeps them in memory)."
        + (f" {errors} invocations failed: see {FUNCTION_LOG}." if errors else ""),
        highlight=False,
    )
    return 0


def _announce(
    console: Console,
    stack: LocalStack,
    emulators: Sequence[SqsEventSourceEmulator],
    connection: Path,
    config_label: str,
) -> None:
    functions = ", ".join(
        f"{emulator.function.logical_id} x{emulator.instances}" for emulator in emulators
    )
    outputs = stack.template.outputs
    lines = [
        f"[bold]Local Prism stack[/] {escape(stack.template.context.stack_name)} "
        f"at {escape(stack.endpoint)}",
        f"  input bucket   {escape(outputs.get('InputBucketName', '?'))} "
        f"(uploads under {escape(stack.template.parameters.get('UploadPrefix', '') or '/')})",
        f"  output bucket  {escape(outputs.get('OutputBucketName', '?'))}",
        f"  pipeline       {escape(config_label)}",
        f"  functions      {escape(functions)}",
        f"  connection     {escape(str(connection))} (other prism commands here use it)",
        f"  function logs  {escape(str(connection.parent / FUNCTION_LOG.name))}",
        "Ephemeral: everything lives in memory and is gone when it stops. Ctrl+C to stop.",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True)
