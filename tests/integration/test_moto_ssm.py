"""moto's SSM without moto's EC2 (see prism_cli.local.moto_ssm).

Each check runs in a fresh interpreter: whether ``moto.ec2`` was imported is a fact about
a whole process, and this test session's own moto server has long imported SSM.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

_STACK = """
import json, sys
from prism_cli.local.stack import MotoServer, StackClients
{before}
with MotoServer() as server:
    ssm = StackClients(server.endpoint).ssm
    ssm.put_parameter(Name="/prism/config", Value="variants: []", Type="String")
    value = ssm.get_parameter(Name="/prism/config")["Parameter"]["Value"]
    facts = {{"value": value, "ec2_after_ssm": "moto.ec2" in sys.modules}}
    import moto.ssm.models
    backend = moto.ssm.models.ec2_backends["123456789012"]["us-east-1"]
    facts["backend"] = type(backend).__name__
    facts["ec2_after_use"] = "moto.ec2" in sys.modules
print(json.dumps(facts))
"""


def _facts(before: str = "") -> dict[str, object]:
    script = textwrap.dedent(_STACK.format(before=before))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    facts: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return facts


def test_the_parameter_store_works_without_importing_ec2() -> None:
    facts = _facts()
    assert facts["value"] == "variants: []"
    assert facts["ec2_after_ssm"] is False
    # What SSM does need of EC2 is there the moment it asks.
    assert facts["backend"] == "EC2Backend"
    assert facts["ec2_after_use"] is True


def test_a_moto_that_needs_more_of_ec2_gets_the_ordinary_import() -> None:
    # As if a later moto imported another name from moto.ec2: the stand-in refuses it.
    refuse_everything = (
        "from prism_cli.local import moto_ssm\n"
        "def refuse(self, name): raise AttributeError(name)\n"
        "moto_ssm._Ec2StandIn.__getattr__ = refuse\n"
    )
    facts = _facts(refuse_everything)
    assert facts["value"] == "variants: []"
    assert facts["ec2_after_ssm"] is True  # imported the ordinary way, and it works
    assert facts["backend"] == "EC2Backend"
