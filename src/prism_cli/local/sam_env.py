"""Environment files that point ``sam local invoke`` at the running ``prism stack up``.

``sam local invoke`` resolves the template without a stack: ``!Ref ProcessingTable`` becomes
the literal ``ProcessingTable``, the stack name ``local``, and the functions would call real
AWS with the user's credentials. Two files fix that:

- ``env.json`` (``--env-vars``): every variable each function declares in template.yaml
  (Globals and its own), resolved for the local stack: its real bucket and table names and
  queue URLs. SAM only overrides variables the template declares for the function; any
  other name in this file is ignored.
- ``container-env.json`` (``--container-env-vars``, applied by SAM only together with
  ``--debug-port``): what the template does not declare, ``AWS_ENDPOINT_URL`` reachable from
  the container and dummy credentials and region, merged over everything else.

Both are built from the local stack's resolved template
(:func:`prism_cli.local.template.load_template` with the stack's own context), so they
follow template.yaml. The running stack is found through its connection file
(:mod:`prism_cli.connection`), as the job commands find it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from prism_cli.aws_env import DUMMY_CREDENTIALS
from prism_cli.connection import find_connection_file, read_connection_document
from prism_cli.errors import UserError

if TYPE_CHECKING:
    from prism_cli.local.template import StackTemplate

# Where a container finds the host: Docker Desktop's name for it, or loopback itself with
# ``--docker-network host`` (Linux), where the container shares the host's network.
DEFAULT_ENDPOINT_HOST = "host.docker.internal"
HOST_NETWORK_ENDPOINT_HOST = "127.0.0.1"

_NO_STACK = "no local stack: run `prism stack up` in this folder (or one above) first"


@dataclass(frozen=True)
class RunningStack:
    """What the connection file of ``prism stack up`` says about the running local stack."""

    endpoint: str
    region: str
    stack_name: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    template_path: Path | None = None

    def load_template(self) -> StackTemplate:
        """The stack's template, resolved exactly as ``prism stack up`` resolved it."""
        # cfn-lint takes seconds to import: only commands that need the template pay for it.
        from prism_cli.local.template import StackContext, find_template, load_template

        context = StackContext(
            stack_name=self.stack_name,
            region=self.region,
            sqs_endpoint=self.endpoint,
            parameters=dict(self.parameters),
        )
        return load_template(find_template(self.template_path), context)


def running_stack(start: Path | None = None) -> RunningStack:
    """The local stack whose connection file is in ``start`` (default: cwd) or above."""
    path = find_connection_file(start)
    if path is None:
        raise UserError(_NO_STACK)
    document = read_connection_document(path)
    try:
        template = document.get("template")
        return RunningStack(
            endpoint=str(document["endpoint"]),
            region=str(document.get("region") or "us-east-1"),
            stack_name=str(document["stack_name"]),
            parameters={str(k): str(v) for k, v in document.get("parameters", {}).items()},
            template_path=Path(template) if template else None,
        )
    except (KeyError, AttributeError, TypeError):
        raise UserError(f"{path} is incomplete; run `prism stack up` again") from None


def container_endpoint(endpoint: str, host: str = DEFAULT_ENDPOINT_HOST) -> str:
    """``endpoint`` (the stack's, on the host's loopback) as a container reaches it."""
    parts = urlsplit(endpoint)
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, f"{host}{port}", parts.path, "", ""))


def _for_container(value: str, endpoint: str, reachable: str) -> str:
    # Queue URLs name the local endpoint: inside a container that would be the container.
    return reachable + value[len(endpoint) :] if value.startswith(endpoint) else value


def container_environment(endpoint: str, region: str) -> dict[str, str]:
    """Variables the template does not declare, for ``--container-env-vars``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        **DUMMY_CREDENTIALS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        # No X-Ray daemon next to the container (the local stack disables tracing too).
        "POWERTOOLS_TRACE_DISABLED": "true",
    }


@dataclass(frozen=True)
class SamEnvironment:
    # ``--env-vars``: {function logical id: {declared variable: value}}.
    env_vars: dict[str, dict[str, str]]
    # ``--container-env-vars``: one flat mapping, for whichever function is invoked.
    container_env_vars: dict[str, str]


def sam_environment(
    template: StackTemplate, endpoint: str, host: str = DEFAULT_ENDPOINT_HOST
) -> SamEnvironment:
    """Both files' contents for the local stack at ``endpoint`` with resolved ``template``."""
    reachable = container_endpoint(endpoint, host)
    extra = container_environment(reachable, template.context.region)
    env_vars: dict[str, dict[str, str]] = {}
    for fn in template.functions.values():
        variables = {
            name: _for_container(value, endpoint, reachable)
            for name, value in fn.environment.items()
        }
        # Should the template ever declare one of these, SAM would apply it from here.
        variables.update({name: extra[name] for name in variables if name in extra})
        env_vars[fn.logical_id] = variables
    return SamEnvironment(env_vars=env_vars, container_env_vars=extra)


def write_json(path: Path, document: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def write_sam_environment(
    stack: RunningStack, env_path: Path, container_path: Path | None, host: str
) -> SamEnvironment:
    environment = sam_environment(stack.load_template(), stack.endpoint, host)
    write_json(env_path, environment.env_vars)
    if container_path is not None:
        write_json(container_path, environment.container_env_vars)
    return environment
