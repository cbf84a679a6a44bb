"""The unit suite runs without the local stack: no module of it imports moto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parent
ROOT = UNIT.parents[1]

# Imports every unit test module in a fresh interpreter (this one may have imported moto for
# other suites) and prints the ones that pulled moto in.
_PROBE = """
import importlib, pathlib, sys
import pytest
sys.path[:0] = [{unit!r}, {tests!r}, {fanout!r}, {worker!r}]
import conftest
offenders = []
for path in sorted(pathlib.Path({unit!r}).glob("test_*.py")):
    try:
        importlib.import_module(path.stem)
    except pytest.skip.Exception:
        continue
    if "moto" in sys.modules:
        offenders.append(path.name)
        break
print(",".join(offenders))
"""


def test_no_unit_test_module_imports_moto() -> None:
    probe = _PROBE.format(
        unit=str(UNIT),
        tests=str(UNIT.parent),
        fanout=str(ROOT / "functions" / "fanout"),
        worker=str(ROOT / "functions" / "worker"),
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "", f"imports moto: {result.stdout.strip()}"
