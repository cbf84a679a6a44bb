"""CloudFormation's YAML: PyYAML's safe loader plus the short forms of intrinsic functions.

AWS defines the short form by a rule: ``!Ref X`` is ``{"Ref": "X"}``, ``!Condition X`` is
``{"Condition": "X"}``, ``!GetAtt A.B`` is ``{"Fn::GetAtt": ["A", "B"]}``, and any other
``!Name value`` is ``{"Fn::Name": value}``. A key given twice in one mapping is an error,
as CloudFormation makes it, rather than the last one silently winning.

cfn-lint reads templates the same way but imports all of its rules (sympy and networkx
among them) to do it: about 0.4 s and 60 MB that every local run paid before its first
upload. ``make template-check`` still lints the template with cfn-lint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

# libyaml's parser, where PyYAML has it (its wheels do): an eighth of the pure-Python time.
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

# Short forms that are not "Fn::" + their name.
_UNPREFIXED = frozenset({"Ref", "Condition"})


class _TemplateLoader(_SafeLoader):
    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _intrinsic(loader: _TemplateLoader, name: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if name == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)  # !GetAtt Resource.Attribute.With.Dots
    return {name if name in _UNPREFIXED else f"Fn::{name}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template_document(path: Path | str) -> Any:
    """The document in the YAML (or JSON) template at ``path``, intrinsics in long form."""
    with open(path, encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_TemplateLoader)  # a safe loader: no Python objects
