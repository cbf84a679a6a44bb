"""Errors the CLI reports as one line on stderr with exit status 2 (no traceback)."""


class UserError(Exception):
    """Bad input from the user: a missing folder, an invalid config, nothing to process."""


class TemplateError(ValueError):
    """The template uses something the local resolver does not understand, or is inconsistent."""
