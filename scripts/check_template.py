"""Lint the template *after* the SAM transform, to catch what the plain linters skip.

``cfn-lint template.yaml`` and ``sam validate --lint`` both ignore dependency cycles that
involve an ``AWS::Serverless::*`` resource (cfn-lint's E3004 skips them on purpose), yet such
cycles are real: a function whose policy ``!Ref``s the bucket that triggers it cannot deploy.
This script runs the SAM transform (samtranslator) on the template, then runs cfn-lint on
the resulting plain CloudFormation, where those cycles and other errors become visible.

It runs with the SAM CLI's tool venv (``.sam-venv``), which has both samtranslator and
cfn-lint; needs no AWS credentials or network. Exit status: 0 clean, 1 errors, 2 bad usage.

    .sam-venv/bin/python scripts/check_template.py [template.yaml] [--write TRANSFORMED.json]
        [--write-switches-on TRANSFORMED_ON.json]

``--write`` also saves the transformed template (for checkov, which ``make template-check``
runs on it). checkov evaluates conditions with the parameters' defaults, so it never sees
what an off-by-default switch (``EnableAccessLogs``, ``EnableCdn``) creates;
``--write-switches-on`` saves a copy in which every "true"/"false" parameter defaults to
"true", for checkov to check too.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# The transform resolves AWS::Region; any region will do for a static check.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

try:
    from cfnlint.api import ManualArgs, lint
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.yaml_helper import yaml_parse
except ImportError as exc:  # pragma: no cover - depends on the interpreter used
    sys.exit(
        f"check_template: {exc}. Run this script with the SAM tool venv's python "
        "(`make template-check` does), which has aws-sam-translator and cfn-lint."
    )

# Local paths are only valid before `sam package`; the transform insists on S3 locations.
_PACKAGE_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
_FAKE_S3_URI = "s3://prism-template-check/{logical_id}.zip"


def with_fake_artifacts(template: dict[str, Any]) -> dict[str, Any]:
    """Point every local CodeUri/ContentUri at a fake S3 object (in memory only)."""
    for logical_id, resource in template.get("Resources", {}).items():
        prop = _PACKAGE_PROPERTIES.get(resource.get("Type", ""))
        if prop and isinstance(resource.get("Properties", {}).get(prop), str):
            resource["Properties"][prop] = _FAKE_S3_URI.format(logical_id=logical_id)
    return template


def sam_transform(template: dict[str, Any]) -> dict[str, Any]:
    """The plain CloudFormation that SAM would deploy for ``template``."""
    translator = Translator(None, Parser())
    # Managed-policy names would need an IAM lookup; policy ARNs and SAM policy templates
    # (all this project uses) do not.
    result: dict[str, Any] = translator.translate(
        template,
        parameter_values={"AWS::Region": os.environ["AWS_DEFAULT_REGION"]},
        get_managed_policy_map=dict,
    )
    return result


def generated_roles(template: dict[str, Any], transformed: dict[str, Any]) -> list[str]:
    """IAM roles in the transformed template that the template does not declare: SAM makes
    one (with its managed policies) for every function without a ``Role``."""
    declared = set(template.get("Resources", {}))
    return sorted(
        logical_id
        for logical_id, resource in transformed.get("Resources", {}).items()
        if resource.get("Type") == "AWS::IAM::Role" and logical_id not in declared
    )


_USAGE = "usage: check_template.py [template.yaml] [--write FILE] [--write-switches-on FILE]"


def with_switches_on(transformed: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``transformed`` in which every "true"/"false" parameter defaults to "true"."""
    copy: dict[str, Any] = json.loads(json.dumps(transformed))
    for parameter in copy.get("Parameters", {}).values():
        if sorted(parameter.get("AllowedValues", [])) == ["false", "true"]:
            parameter["Default"] = "true"
    return copy


def _option(argv: list[str], name: str) -> tuple[Path | None, bool]:
    """The path given after ``name`` (removed from ``argv``), and whether the usage is good."""
    if name not in argv:
        return None, True
    at = argv.index(name)
    if at + 1 >= len(argv):
        return None, False
    value = Path(argv[at + 1])
    del argv[at : at + 2]
    return value, True


def main(argv: list[str]) -> int:
    argv = list(argv)
    write, good = _option(argv, "--write")
    write_on, good_on = _option(argv, "--write-switches-on")
    if not (good and good_on) or len(argv) > 1:
        print(_USAGE, file=sys.stderr)
        return 2
    path = Path(argv[0] if argv else "template.yaml")
    if not path.is_file():
        print(f"check_template: {path} not found", file=sys.stderr)
        return 2

    template = with_fake_artifacts(yaml_parse(path.read_text()))
    try:
        transformed = sam_transform(template)
    except InvalidDocumentException as exc:
        print(f"check_template: the SAM transform rejected {path}:", file=sys.stderr)
        for cause in exc.causes:
            print(f"  - {cause.message}", file=sys.stderr)
        return 1

    generated = generated_roles(template, transformed)
    if generated:
        print(
            f"check_template: the SAM transform generated IAM roles {', '.join(generated)}: "
            "give each function a Role of its own (least privilege, docs/operations.md)",
            file=sys.stderr,
        )
        return 1
    if write is not None:
        write.parent.mkdir(parents=True, exist_ok=True)
        write.write_text(json.dumps(transformed, indent=2))
    if write_on is not None:
        write_on.parent.mkdir(parents=True, exist_ok=True)
        write_on.write_text(json.dumps(with_switches_on(transformed), indent=2))
    matches = lint(json.dumps(transformed), config=ManualArgs(regions=["us-east-1"]))
    errors = [m for m in matches if m.rule.severity == "error"]
    for match in matches:
        where = "/".join(str(part) for part in match.path) if match.path else "-"
        print(f"  {match.rule.id} [{match.rule.severity}] {match.message} ({where})")
    if errors:
        print(
            f"check_template: {len(errors)} error(s) in the SAM-transformed {path} "
            "(E3004 is a circular dependency: refer to buckets by their !Sub name in "
            "policies and env vars, never by !Ref)",
            file=sys.stderr,
        )
        return 1
    print(
        f"check_template: SAM-transformed {path} is clean "
        f"({len(transformed.get('Resources', {}))} CloudFormation resources, "
        f"{len(matches)} warning(s))"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
