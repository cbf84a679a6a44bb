"""The connection file: how ``prism stack up`` (:mod:`prism_cli.local.server`) tells the
job commands (:mod:`prism_cli.jobs.target`) and ``prism stack sam-env`` / ``prism event``
(:mod:`prism_cli.local.sam_env`) where its local stack is."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prism_cli.errors import UserError

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


def find_connection_file(start: Path | None = None) -> Path | None:
    """The connection file in ``start`` (default: the current folder) or a folder above."""
    folder = (start or Path.cwd()).resolve()
    for candidate in [folder, *folder.parents]:
        path = candidate / CONNECTION_FILE
        if path.is_file():
            return path
    return None


def read_connection_document(path: Path) -> dict[str, Any]:
    """The connection file at ``path``, parsed: a UserError if it cannot be read, is not
    one, or names a ``prism stack up`` that is no longer running."""
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("version") != CONNECTION_VERSION:
        raise UserError(f"{path} is not a prism connection file (version {CONNECTION_VERSION})")
    pid = document.get("pid")
    if isinstance(pid, int) and not process_alive(pid):
        raise UserError(
            f"the local stack of {path} is not running (process {pid} is gone); "
            "run `prism stack up` again (its state was in memory and is lost)"
        )
    return document
