"""Rewrites for moto's CloudFormation gaps (../shared/PLATFORM_NOTES.md), used only by tests.

Real targets receive the expanded template untouched; moto gets this translation of it:

- resource types moto's CloudFormation does not implement (alarms, API stages...) are dropped,
  together with what depends on them, and so is the REST API: moto does not import an API from
  its Body (the swagger Chalice writes), so its deployment would find no methods;
- a state machine's definition is read from S3 into DefinitionString and its
  DefinitionSubstitutions are folded in with Fn::Sub (placeholders it does not name are kept
  literally, as CloudFormation keeps them), since moto reads DefinitionString only. TTL, which
  moto also ignores, is compared through the template instead.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from payflow.cfn import references
from payflow.deploy.package import STATE_MACHINES


def for_moto(template: dict[str, Any], s3: Any) -> dict[str, Any]:
    """The expanded template as moto can create it; `s3` reads uploaded definitions."""
    from moto.cloudformation.parsing import resource_class_from_type

    result = copy.deepcopy(template)
    resources: dict[str, Any] = result["Resources"]
    dropped = {
        lid
        for lid, r in resources.items()
        if not resource_class_from_type(r["Type"]) or r["Type"].startswith("AWS::ApiGateway::")
    }
    changed = True
    while changed:  # whatever references a dropped resource goes too
        changed = False
        for lid, resource in resources.items():
            if lid not in dropped and references(resource) & dropped:
                dropped.add(lid)
                changed = True
    for lid in dropped:
        del resources[lid]
    result["Outputs"] = {
        name: output
        for name, output in (result.get("Outputs") or {}).items()
        if not references(output) & dropped
    }
    for resource in resources.values():
        properties = resource.setdefault("Properties", {})
        if resource["Type"] in STATE_MACHINES:
            definition = properties.pop("Definition", None)
            if definition is not None:
                properties["DefinitionString"] = json.dumps(definition)
            location = properties.pop("DefinitionS3Location", None)
            if location is not None:
                body = s3.get_object(Bucket=location["Bucket"], Key=location["Key"])["Body"]
                properties["DefinitionString"] = body.read().decode("utf-8")
            substitutions = properties.pop("DefinitionSubstitutions", None)
            if substitutions:
                text = _escape_unknown(properties["DefinitionString"], set(substitutions))
                properties["DefinitionString"] = {"Fn::Sub": [text, substitutions]}
    return result


def _escape_unknown(text: str, names: set[str]) -> str:
    """``${x}`` placeholders that are not substitutions become Fn::Sub's literal ``${!x}``."""
    return re.sub(
        r"\$\{([^}]*)\}",
        lambda m: m.group(0) if m.group(1) in names else "${!" + m.group(1) + "}",
        text,
    )
