"""Reading CloudFormation values: what an intrinsic refers to. Shared by the sandbox's
provisioning and the package step, which both order resources by their references."""

from __future__ import annotations

import re
from typing import Any

_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def getatt_args(argument: Any) -> tuple[str, str]:
    """(logical id, attribute) of a Fn::GetAtt, in either of its forms."""
    if isinstance(argument, str):
        logical_id, _, attribute = argument.partition(".")
        return logical_id, attribute
    return str(argument[0]), str(argument[1])


def references(value: Any) -> set[str]:
    """Logical ids (and parameters) that `value` names through Ref, Fn::GetAtt and Fn::Sub
    (a Sub's own variables are not references; their values may hold some)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(getatt_args(item)[0])
            elif key == "Fn::Sub":
                text = item[0] if isinstance(item, list) else item
                variables = item[1] if isinstance(item, list) else {}
                for name in _SUB_VARIABLE.findall(str(text)):
                    if name not in variables:
                        found.add(name.split(".", 1)[0])
                found |= references(variables)
            else:
                found |= references(item)
    return found
