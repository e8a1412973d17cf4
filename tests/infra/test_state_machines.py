"""Every state machine of infra/resources.json has a definition that AWS would accept: its
placeholders are exactly its DefinitionSubstitutions, it parses with moto's ASL parser, and its
states form a valid graph (StartAt and every transition target exist, every state is reachable,
every non-terminal state moves on)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from payflow.deploy.package import REPO_ROOT, STATE_MACHINES
from payflow.sandbox.provision import load_template

RESOURCES = load_template(REPO_ROOT / "infra" / "resources.json")
MACHINES = {
    lid: r["Properties"] for lid, r in RESOURCES["Resources"].items() if r["Type"] in STATE_MACHINES
}
# What CloudFormation (and LocalStack) substitute: ${name} with a plain identifier.
PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")
TERMINAL = {"Succeed", "Fail"}


def definition_text(properties: dict[str, Any]) -> str:
    for key in ("DefinitionUri", "DefinitionS3Location"):
        if isinstance(properties.get(key), str):
            return (REPO_ROOT / properties[key]).read_text(encoding="utf-8")
    if "DefinitionString" in properties:
        return str(properties["DefinitionString"])
    return json.dumps(properties["Definition"])


def substituted(properties: dict[str, Any]) -> dict[str, Any]:
    """The definition with stand-ins for its substitutions: parameter defaults for Refs to
    parameters, an ARN for everything else."""
    parameters = RESOURCES.get("Parameters", {})
    values = {}
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        if isinstance(value, dict) and value.get("Ref") in parameters:
            values[key] = str(parameters[value["Ref"]]["Default"])
        elif isinstance(value, str | int | float):
            values[key] = str(value)
        else:
            values[key] = f"arn:aws:lambda:us-east-1:123456789012:function:{key}"
    text = PLACEHOLDER.sub(
        lambda m: values.get(m.group(1), m.group(0)), definition_text(properties)
    )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest) -> dict[str, Any]:
    return MACHINES[request.param]


def test_the_template_has_state_machines() -> None:
    assert MACHINES


def test_placeholders_are_exactly_the_substitutions(machine: dict[str, Any]) -> None:
    used = set(PLACEHOLDER.findall(definition_text(machine)))
    given = set(machine.get("DefinitionSubstitutions") or {})

    assert used - given == set(), "placeholders without a substitution"
    assert given - used == set(), "substitutions the definition never uses"


def test_the_definition_parses_with_motos_asl_parser(machine: dict[str, Any]) -> None:
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    program, _ = AmazonStateLanguageParser.parse(json.dumps(substituted(machine)))

    assert program is not None


def test_the_states_form_a_valid_graph(machine: dict[str, Any]) -> None:
    assert check_graph(substituted(machine)) == []


def check_graph(definition: dict[str, Any], where: str = "") -> list[str]:
    """Structural problems of one ASL state graph (and of its Parallel and Map branches)."""
    problems: list[str] = []
    states: dict[str, Any] = definition.get("States") or {}
    start = definition.get("StartAt")
    if start not in states:
        return [f"{where}StartAt {start!r} is not a state"]
    edges: dict[str, set[str]] = {}
    for name, state in states.items():
        targets = _targets(state)
        edges[name] = targets
        for target in targets - set(states):
            problems.append(f"{where}{name} -> {target!r}, which is not a state")
        kind = state.get("Type")
        if kind not in TERMINAL | {"Choice"} and not state.get("End") and "Next" not in state:
            problems.append(f"{where}{name} ({kind}) has neither Next nor End")
        for index, branch in enumerate(state.get("Branches") or []):
            problems += check_graph(branch, f"{where}{name}.Branches[{index}].")
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if processor:
            problems += check_graph(processor, f"{where}{name}.ItemProcessor.")
    reachable, todo = {start}, [start]
    while todo:
        for target in edges.get(todo.pop(), set()) & set(states):
            if target not in reachable:
                reachable.add(target)
                todo.append(target)
    problems += [f"{where}{name} is unreachable" for name in sorted(set(states) - reachable)]
    return problems


def _targets(state: dict[str, Any]) -> set[str]:
    targets = {state["Next"]} if "Next" in state else set()
    if "Default" in state:
        targets.add(state["Default"])
    targets |= {choice["Next"] for choice in state.get("Choices", []) if "Next" in choice}
    targets |= {catch["Next"] for catch in state.get("Catch", []) if "Next" in catch}
    return targets


def test_check_graph_reports_a_missing_target_and_an_unreachable_state() -> None:
    definition = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Next": "Nowhere"},
            "B": {"Type": "Succeed"},
            "C": {"Type": "Task", "Resource": "arn"},
        },
    }

    assert check_graph(definition) == [
        "A -> 'Nowhere', which is not a state",
        "C (Task) has neither Next nor End",
        "B is unreachable",
        "C is unreachable",
    ]
