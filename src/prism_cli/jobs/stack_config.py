"""The pipeline config a stack is running: its SSM parameter, read (or replaced) by the CLI."""

from __future__ import annotations

from typing import Any

import aioboto3
import yaml
from botocore.exceptions import ClientError

from prism.aws.clients import RETRY_CONFIG
from prism.aws.errors import error_code
from prism.config import PipelineConfig, default_config_text
from prism.pipeline_source import config_from_parameter, is_built_in
from prism_cli.config_files import checked_config
from prism_cli.errors import UserError
from prism_cli.jobs.target import StackTarget


async def read_config_text(target: StackTarget) -> str:
    """The parameter's value: config YAML/JSON, or ``default`` for the built-in one."""
    async with aioboto3.Session().client("ssm", config=RETRY_CONFIG) as ssm:
        try:
            response = await ssm.get_parameter(Name=target.config_parameter)
        except ClientError as exc:
            if error_code(exc) == "ParameterNotFound":
                raise UserError(
                    f"{target.label} has no parameter {target.config_parameter}"
                ) from None
            raise
    return str(response["Parameter"]["Value"])


def config_from_text(text: str, parameter: str) -> PipelineConfig:
    """The config the parameter's value stands for (``default``: the built-in one), as the
    functions read it; a one-line UserError if it is not valid."""
    return checked_config(text, f"SSM parameter {parameter}", config_from_parameter)


async def active_config(target: StackTarget) -> PipelineConfig:
    return config_from_text(await read_config_text(target), target.config_parameter)


def config_yaml(config: PipelineConfig) -> str:
    """The config as parsed (every default filled in), dumped as YAML that parses back to
    the same config: what a job's log records as its ``config``."""
    document = config.model_dump(mode="json")
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


async def logged_config(target: StackTarget) -> tuple[PipelineConfig | None, str]:
    """The stack's config and what a log records of it: its YAML (:func:`config_yaml`).
    A config the functions cannot use does not stop a log: it is recorded as it is, and
    the config is None."""
    text = await read_config_text(target)
    try:
        config = config_from_text(text, target.config_parameter)
    except UserError:
        return None, text
    return config, config_yaml(config)


def shown_config_text(text: str, parameter: str) -> str:
    """What ``prism config show`` prints for the parameter's value: the value itself, or,
    for ``default``, the built-in config's YAML after a comment line saying so."""
    if not is_built_in(text):
        return text if text.endswith("\n") else text + "\n"
    built_in = default_config_text()
    comment = f"# The built-in default pipeline config ({parameter} is 'default').\n"
    return comment + (built_in if built_in.endswith("\n") else built_in + "\n")


def check_variant_names(config: PipelineConfig, names: list[str]) -> list[str]:
    """``names`` if the config has them all; a UserError naming the unknown ones."""
    known = [variant.name for variant in config.variants]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UserError(
            f"unknown variant(s) {', '.join(map(repr, unknown))}: "
            f"the pipeline has {', '.join(known)}"
        )
    return list(dict.fromkeys(names))


def check_config_text(text: str, source: str) -> PipelineConfig:
    """The config ``text`` (read from ``source``, a file) stands for, as the functions would
    read it; a one-line UserError naming ``source`` if it is not valid."""
    return checked_config(text, source, config_from_parameter)


async def write_config_text(
    target: StackTarget, text: str, source: str = "the given config"
) -> None:
    """Replace the stack's pipeline config (validated first, errors naming ``source``);
    its tier is kept."""
    check_config_text(text, source)  # a bad config never reaches the stack
    async with aioboto3.Session().client("ssm", config=RETRY_CONFIG) as ssm:
        described = await ssm.describe_parameters(
            ParameterFilters=[{"Key": "Name", "Values": [target.config_parameter]}]
        )
        put: dict[str, Any] = {
            "Name": target.config_parameter,
            "Value": text,
            "Type": "String",
            "Overwrite": True,
        }
        tiers = [p.get("Tier") for p in described.get("Parameters", []) if p.get("Tier")]
        if tiers:
            put["Tier"] = tiers[0]
        await ssm.put_parameter(**put)
