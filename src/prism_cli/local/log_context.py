"""Each emulated function instance logs with its own invocation's Lambda context.

In Lambda every instance of a function is a process of its own, so the keys that
Powertools' ``inject_lambda_context`` appends (function name, request id, cold start,
correlation id) describe the one invocation that process runs. Locally every instance is a
thread of one process, and ``append_keys`` writes to the logger, which all of them share
(it is not thread-safe: aws-powertools/powertools-lambda-python#2040), so a fan-out line
could carry the name and request id of a worker invocation running at the same time.

Here the handlers' logger appends keys per thread instead, with Powertools' own
``thread_safe_append_keys``: a context variable, which the instance's asyncio tasks and
``asyncio.to_thread`` calls carry along, so each line names the invocation it came from.
"""

from __future__ import annotations

import threading

from prism_cli.local.moto_locking import applied_once

_lock = threading.RLock()


@applied_once(_lock)
def log_context_per_instance() -> None:
    """Patch the handlers' logger in this process (idempotent)."""
    from prism.observability import logger

    # An instance attribute: only Prism's logger changes, not Powertools' class.
    logger.append_keys = logger.thread_safe_append_keys  # type: ignore[method-assign]
