"""The connection file: how ``prism stack up`` (:mod:`prism_cli.local.server`) tells the
job commands (:mod:`prism_cli.jobs.target`) where its local stack is."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

CONNECTION_FILE = Path(".prism") / "local-stack.json"
CONNECTION_VERSION = 1
DEFAULT_LOCAL_PORT = 4566  # `prism stack up`


def write_connection_file(
    path: Path,
    *,
    endpoint: str,
    region: str,
    stack_name: str,
    outputs: Mapping[str, str],
    parameters: Mapping[str, str],
    template: Path | None = None,
    pid: int | None = None,
) -> Path:
    """Describe a running local stack for other ``prism`` commands; written atomically."""
    document = {
        "version": CONNECTION_VERSION,
        "endpoint": endpoint,
        "region": region,
        "stack_name": stack_name,
        "pid": os.getpid() if pid is None else pid,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "template": None if template is None else str(template),
        "outputs": dict(outputs),
        "parameters": dict(parameters),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    except OSError:
        return False
    return True
