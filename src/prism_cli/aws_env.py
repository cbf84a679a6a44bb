"""Process environment for talking to a local moto stack: dummy credentials, and no
variable that could send a request elsewhere or mix in real credentials.

Kept apart from :mod:`prism_cli.local_stack` so that commands that only talk to a stack do
not import moto.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

__all__ = ["DUMMY_CREDENTIALS", "applied_environment", "unsafe_environment_names"]

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


@contextmanager
def applied_environment(environment: Mapping[str, str]) -> Iterator[None]:
    """Set ``environment`` in ``os.environ`` (dropping unsafe AWS variables); restore after."""
    saved = dict(os.environ)
    try:
        for name in list(os.environ):
            if name in _UNSAFE_NAMES or name.startswith(_UNSAFE_PREFIXES):
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
