"""The local stack's template reader: CloudFormation's short forms, read as cfn-lint reads them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from prism_cli.errors import TemplateError
from prism_cli.local.template import _plain, load_template
from prism_cli.local.template_yaml import load_template_document

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_the_project_template_as_cfn_lint_does() -> None:
    ours = _plain(load_template_document(REPO / "template.yaml"))
    cfn_lint: Any = _plain(cfn_yaml.load(str(REPO / "template.yaml")))
    assert ours == cfn_lint
    assert "Fn::GetAtt" in str(ours) and "Fn::Sub" in str(ours)  # short forms were in it


def test_short_forms_become_the_long_forms(tmp_path: Path) -> None:
    text = """\
A: !Ref Bucket
B: !GetAtt Queue.Arn
C: !GetAtt Stack.Outputs.Name
D: !GetAtt [Queue, QueueName]
E: !Sub "${AWS::StackName}-x"
F: !Join [",", [!Ref X, !Ref Y]]
G: !If [IsProd, !Ref P, !Ref "AWS::NoValue"]
H: !Condition IsProd
I: !Select [0, !GetAZs ""]
"""
    document = load_template_document(_write(tmp_path, text))
    assert document == {
        "A": {"Ref": "Bucket"},
        "B": {"Fn::GetAtt": ["Queue", "Arn"]},
        "C": {"Fn::GetAtt": ["Stack", "Outputs.Name"]},
        "D": {"Fn::GetAtt": ["Queue", "QueueName"]},
        "E": {"Fn::Sub": "${AWS::StackName}-x"},
        "F": {"Fn::Join": [",", [{"Ref": "X"}, {"Ref": "Y"}]]},
        "G": {"Fn::If": ["IsProd", {"Ref": "P"}, {"Ref": "AWS::NoValue"}]},
        "H": {"Condition": "IsProd"},
        "I": {"Fn::Select": [0, {"Fn::GetAZs": ""}]},
    }
    assert document == _plain(cfn_yaml.load(str(tmp_path / "template.yaml")))


def test_a_key_given_twice_is_an_error_not_a_silent_override(tmp_path: Path) -> None:
    path = _write(tmp_path, "Resources:\n  Queue: {Type: AWS::SQS::Queue}\n  Queue: {}\n")
    with pytest.raises(TemplateError, match="duplicate key 'Queue'"):
        load_template(path)


@pytest.mark.parametrize(
    "text",
    ["Resources: {}\nWhen: 2020-13-45\n", "Resources: [\n", b"Resources: {}\n# \xff\n"],
    ids=["a date YAML cannot read", "broken YAML", "not UTF-8"],
)
def test_an_unreadable_template_is_a_template_error(tmp_path: Path, text: str | bytes) -> None:
    path = tmp_path / "template.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(TemplateError, match="cannot parse"):
        load_template(path)


def test_the_template_reader_does_not_import_cfn_lint() -> None:
    code = "import sys, prism_cli.local.stack; print('cfnlint' in sys.modules)"
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert shown.stdout.strip() == "False"
