"""Process environment for talking to a local moto stack: dummy credentials, and no
variable that could send a request elsewhere or mix in real credentials.

Shared by the local stack (:mod:`prism_cli.local`) and the job commands' local target
(:mod:`prism_cli.jobs.target`), which must not import moto.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

# moto accepts any credentials; fixed dummies keep real ones from ever being used.
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Variables that could send a request somewhere other than the local endpoint, or mix in
# real credentials: removed while the local environment is applied.
_UNSAFE_PREFIXES = ("AWS_ENDPOINT_URL_",)
_UNSAFE_NAMES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    # Powertools behaves as inside Lambda when this is set (one shared event loop).
    "LAMBDA_TASK_ROOT",
)


def endpoint_environment(endpoint: str, region: str) -> dict[str, str]:
    """The SDKs pointed at the local server ``endpoint``, in ``region``, with the dummies."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
    }


@contextmanager
def applied_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """Set ``environment`` in ``os.environ`` (dropping unsafe AWS variables); restore after."""
    saved = dict(os.environ)
    try:
        for name in unsafe_environment_names():
            del os.environ[name]
        os.environ.update(environment)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def unsafe_environment_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """Names in ``environ`` that :func:`applied_environment` removes."""
    env = os.environ if environ is None else environ
    return [n for n in env if n in _UNSAFE_NAMES or n.startswith(_UNSAFE_PREFIXES)]
