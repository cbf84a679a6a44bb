"""Errors the CLI reports as one line on stderr with exit status 2 (no traceback)."""

from __future__ import annotations

from botocore.exceptions import ClientError


class UserError(Exception):
    """Bad input from the user: a missing folder, an invalid config, nothing to process."""


class TemplateError(ValueError):
    """The template uses something the local resolver does not understand, or is inconsistent."""


def aws_error(exc: ClientError) -> str:
    """``Code: message`` of an error AWS answered with."""
    error = exc.response.get("Error", {})
    return f"{error.get('Code', '?')}: {error.get('Message', exc)}"
