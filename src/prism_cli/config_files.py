"""Pipeline configs the user gives (``prism run --config``, ``stack up --config``, ``config
set``): their text, validated, or a one-line UserError saying why they cannot be used."""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Callable
from pathlib import Path

from prism.config import (
    MAX_CONFIG_BYTES,
    ConfigError,
    PipelineConfig,
    check_config_size,
    config_too_large,
    default_config,
    parse_config,
)
from prism_cli.errors import UserError

# The most a config file may hold: the largest config and a byte order mark.
_MAX_FILE_BYTES = MAX_CONFIG_BYTES + len(codecs.BOM_UTF8)


def read_config_file(path: Path) -> str:
    """The file's text. YAML and JSON configs are UTF-8; a UTF-8 byte order mark (as some
    Windows editors write) is dropped. A file larger than a config may be is refused
    without being read past the limit."""
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_FILE_BYTES + 1)
            if len(data) > _MAX_FILE_BYTES:
                info = os.fstat(file.fileno())
                size = info.st_size if stat.S_ISREG(info.st_mode) else None  # a pipe: unknown
                raise UserError(str(config_too_large(str(path), size)))
    except OSError as exc:
        raise UserError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        hint = " (it looks like UTF-16)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        raise UserError(
            f"cannot read config {path}: not UTF-8 text{hint}, invalid byte at offset "
            f"{exc.start}; save it as UTF-8"
        ) from None
    try:
        check_config_size(text, str(path))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    return text


def checked_config(
    text: str, label: str, parse: Callable[[str, str], PipelineConfig] = parse_config
) -> PipelineConfig:
    """``parse(text, label)``: the config validated; a one-line UserError if it is not valid."""
    try:
        return parse(text, label)
    except ConfigError as exc:
        raise UserError(" ".join(str(exc).split())) from None


def load_config(
    path: Path | None, text: str | None = None, label: str | None = None
) -> tuple[str | None, str, PipelineConfig]:
    """The config's text (None: the built-in default), how the log names it, and the
    config. ``text`` (given directly, as the demo does) wins over the file at ``path``."""
    if text is not None:
        label = label or "given config"
    elif path is not None:
        text, label = read_config_file(path), str(path)
    else:
        return None, "built-in default", default_config()
    return text, label, checked_config(text, label)
