"""Keep moto's parameter store from importing all of moto's EC2.

``moto.ssm.models`` imports ``moto.ec2`` for one use: the instances a maintenance window
targets. Importing it builds moto's EC2 models, instance types and every region's zones:
0.6 s on the development machine (more than starting the rest of the stack), 2.2 s on a
slower one, in every local run and test session, although the stack only keeps its
pipeline config in SSM. Here ``moto.ssm`` is imported with a stand-in for ``moto.ec2``
whose ``ec2_backends`` imports the real one the first time SSM asks it for a backend;
after that, ``moto.ec2`` imports as usual. The stand-in is in ``sys.modules`` only while
``moto.ssm`` is imported, as the local server starts, before any of its threads run.

If a later moto takes anything else from ``moto.ec2`` at import, the stand-in refuses it
and SSM is imported the ordinary way: slower, never broken.
"""

from __future__ import annotations

import sys
import threading
import types
from typing import Any

from prism_cli.local.moto_locking import applied_once

_lock = threading.RLock()
_EC2 = "moto.ec2"
_SSM = "moto.ssm"


class LazyEc2Backends:
    """``moto.ec2.ec2_backends``, imported on first use (by account id, as moto's is)."""

    def __getitem__(self, account_id: str) -> Any:
        from moto.ec2.models import ec2_backends  # what moto.ec2 exports as its own

        return ec2_backends[account_id]


class _Ec2StandIn(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name == "ec2_backends":
            return LazyEc2Backends()
        raise AttributeError(name)  # "cannot import name": SSM is imported as usual


@applied_once(_lock)
def defer_ec2_import() -> None:
    """Import ``moto.ssm`` without ``moto.ec2`` (idempotent; a no-op once either is in)."""
    if _SSM in sys.modules or _EC2 in sys.modules:
        return
    before = set(sys.modules)
    sys.modules[_EC2] = _Ec2StandIn(_EC2)
    try:
        import moto.ssm.models  # noqa: F401
    except ImportError:
        # Not what this module expects: drop what the attempt left half-imported.
        for name in set(sys.modules) - before:
            if name == _SSM or name.startswith(_SSM + "."):
                del sys.modules[name]
        vars(sys.modules["moto"]).pop("ssm", None)
    finally:
        del sys.modules[_EC2]
        if isinstance(vars(sys.modules["moto"]).get("ec2"), _Ec2StandIn):
            delattr(sys.modules["moto"], "ec2")
