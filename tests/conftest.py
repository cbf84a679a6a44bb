"""Session-wide set-up shared by unit and integration tests.

It imports neither moto nor cfn-lint nor the CLI, so the pure unit tests need neither.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


class _TemplateLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form intrinsics (``!Ref``, ``!Sub``...) as plain values."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def powertools_environment(template: Path = TEMPLATE) -> dict[str, str]:
    """The literal POWERTOOLS_* and LOG_LEVEL variables the template gives every function."""
    document = yaml.load(template.read_text(encoding="utf-8"), Loader=_TemplateLoader)
    variables = document["Globals"]["Function"]["Environment"]["Variables"]
    return {
        name: str(value)
        for name, value in variables.items()
        if name.startswith("POWERTOOLS_") or name == "LOG_LEVEL"
    }


# Powertools' Logger, Metrics and Tracer read their settings when ``prism.observability`` is
# first imported, which may be at collection time: give them the functions' values from
# the template before any test module imports the package.
for _name, _value in powertools_environment().items():
    os.environ.setdefault(_name, _value)


def pytest_configure() -> None:
    """Ctrl+C as a terminal gives it: the tests that press it (in this process, or in a
    command they start) expect SIGINT's default disposition. A suite started with SIGINT
    ignored (a shell script's background job) would otherwise pass that on to every command
    it starts, which then rightly ignores Ctrl+C; tests/unit/test_interrupts.py covers that
    case on purpose."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
