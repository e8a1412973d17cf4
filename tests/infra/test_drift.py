"""The three targets cannot drift: the package, deployed by CloudFormation (moto's, after the
translation in moto_compat), creates the same tables, indexes, streams, queues, redrive policies
and state machine definitions as the embedded sandbox's provisioning of infra/resources.json.

Both sides run in one moto in a subprocess (drift_probe), under different stack names; physical
names and ARNs are replaced by the logical ids they belong to before comparing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from payflow.deploy.package import QUEUE, STATE_MACHINES, TABLE

from .conftest import of_type

KINDS = {"tables": (TABLE,), "queues": (QUEUE,), "state_machines": STATE_MACHINES}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_cloudformation_creates_what_the_sandbox_provisions(
    kind: str, drift: dict[str, Any], resources: dict[str, Any]
) -> None:
    expected = set(of_type(resources, *KINDS[kind]))
    cfn, sandbox = drift["cfn"][kind], drift["sandbox"][kind]

    assert set(cfn) == expected
    assert set(sandbox) == expected
    different = {
        lid: {"cloudformation": cfn[lid], "sandbox": sandbox[lid]}
        for lid in expected
        if cfn[lid] != sandbox[lid]
    }
    assert not different, json.dumps(different, indent=1, sort_keys=True)[:6000]


def test_the_comparison_sees_streams_indexes_and_redrive(drift: dict[str, Any]) -> None:
    tables, queues = drift["cfn"]["tables"], drift["cfn"]["queues"]

    assert any(t["StreamSpecification"] for t in tables.values())
    assert any(t["GlobalSecondaryIndexes"] for t in tables.values())
    redrive = [q["RedrivePolicy"] for q in queues.values() if "RedrivePolicy" in q]
    assert redrive and all(r["deadLetterTargetArn"].startswith("<") for r in redrive)


def test_the_sandbox_enables_the_ttl_the_package_declares(
    drift: dict[str, Any], template: dict[str, Any]
) -> None:
    for logical_id, table in of_type(template, TABLE).items():
        declared = table["Properties"].get("TimeToLiveSpecification")
        actual = drift["sandbox_ttl"][logical_id]
        if declared and declared.get("Enabled"):
            assert actual == {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": declared["AttributeName"],
            }
        else:
            assert actual.get("TimeToLiveStatus", "DISABLED") == "DISABLED"
