"""Reading a pipeline config file (``prism run --config``, ``stack up --config``,
``config set``): its text, or a one-line UserError saying why it cannot be read."""

from __future__ import annotations

from pathlib import Path

from prism_cli.errors import UserError


def read_config_file(path: Path) -> str:
    """The file's text. YAML and JSON configs are UTF-8; a UTF-8 byte order mark (as some
    Windows editors write) is dropped."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise UserError(
            f"cannot read config {path}: not UTF-8 text{hint}, invalid byte at offset "
            f"{exc.start}; save it as UTF-8"
        ) from None
