"""Session-wide set-up shared by unit and integration tests."""

from __future__ import annotations

import os
from pathlib import Path

from prism_cli.local_stack import local_environment
from prism_cli.template import load_template

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"

# Powertools' Logger, Metrics and Tracer read their settings when ``prism.observability`` is
# first imported, which may be at collection time: give them the functions' values from
# the template before any test module imports the package (endpoint-free names only).
for _name, _value in local_environment(load_template(TEMPLATE), endpoint="").items():
    if _name.startswith("POWERTOOLS_") or _name == "LOG_LEVEL":
        os.environ.setdefault(_name, _value)
