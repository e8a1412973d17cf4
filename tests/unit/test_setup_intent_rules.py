"""The SetupIntent's rules as pure functions, and its bodies against Stripe's published schema."""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from chalicelib.domain import setup_intents as rules
from chalicelib.domain.payment_methods import from_test_card, made_from
from chalicelib.domain.setup_intents import (
    AutomaticPaymentMethods,
    SetupAttemptStatus,
    SetupCancellationReason,
    Usage,
)
from chalicelib.domain.setup_intents import SetupIntentStatus as S
from chalicelib.domain.test_cards import describe
from chalicelib.errors import InvalidRequestError, ParameterInvalid, UnexpectedState

# The slice of Stripe's OpenAPI spec the project shares beside the repository.
SCHEMAS = Path(os.environ.get("PAYFLOW_STRIPE_SCHEMAS", "/work/shared/stripe/stripe_schemas.json"))


def _json_schema(node: Any) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable` becomes a null type (or enum value, or anyOf
    branch); Stripe's `x-` annotations go."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: _json_schema(v) for k, v in node.items() if not k.startswith("x-")}
    if out.pop("nullable", False) is True:
        if "type" in out:
            out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
        if "anyOf" in out:
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


@functools.cache
def stripe_spec() -> dict[str, Any]:
    """Stripe's schemas as JSON Schema, with its stubs as "any object"."""
    if not SCHEMAS.exists():
        pytest.fail(f"{SCHEMAS} is missing: the schema checks cannot run without it")
    raw = json.loads(SCHEMAS.read_text())
    schemas = _json_schema(raw["components"]["schemas"])
    for stub in raw["x-stubs"]:
        schemas.setdefault(stub, {"type": "object"})
    return {"components": {"schemas": schemas}, "raw": raw["components"]["schemas"]}


def assert_stripe_shaped(name: str, body: dict[str, Any]) -> None:
    """`body` validates against Stripe's schema `name` and has no field Stripe does not."""
    spec = stripe_spec()
    root = {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}
    errors = sorted(Draft202012Validator(root).iter_errors(body), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    assert set(body) <= set(spec["raw"][name]["properties"]), set(body) - set(
        spec["raw"][name]["properties"]
    )


def new(payment_method: str | None = None, customer: str | None = None, **kw: Any):
    return rules.create(
        id="seti_1",
        merchant_id="acct_1",
        created=1,
        client_secret="seti_1_secret_x",
        usage=kw.pop("usage", Usage.OFF_SESSION),
        customer=customer,
        payment_method=payment_method,
        payment_method_types=kw.pop("payment_method_types", None),
        automatic=kw.pop("automatic", None),
        description=None,
        metadata=None,
    )


def card(pm_id: str):
    test_card = describe(pm_id)
    assert test_card is not None
    return from_test_card("acct_1", test_card)


def confirm(si, pm_id: str, return_url: str | None = None):
    return rules.attempted(
        si,
        card(pm_id),
        attempt_id="setatt_1",
        created=2,
        handover=rules.Handover(return_url=return_url),
        action_url="http://127.0.0.1/v1/sandbox/setup_intents/seti_1/authenticate",
    )


def test_every_status_has_a_transition_row_and_terminals_go_nowhere():
    assert set(rules.TRANSITIONS) == set(S)
    assert rules.TRANSITIONS[S.SUCCEEDED] == frozenset()
    assert rules.TRANSITIONS[S.CANCELED] == frozenset()


def test_created_status_follows_the_payment_method():
    assert new().status == S.REQUIRES_PAYMENT_METHOD
    si = new("pm_card_visa")
    assert si.status == S.REQUIRES_CONFIRMATION and si.usage == Usage.OFF_SESSION
    assert (
        si.payment_method_types == ["card"] and si.to_api()["allowed_payment_method_types"] is None
    )


def test_automatic_payment_methods_and_explicit_types_exclude_each_other():
    auto = new(automatic=AutomaticPaymentMethods(enabled=True))
    assert auto.payment_method_types == ["card", "upi"]
    assert auto.to_api()["automatic_payment_methods"] == {
        "enabled": True,
        "allow_redirects": "always",
    }
    with pytest.raises(InvalidRequestError) as raised:
        new(automatic=AutomaticPaymentMethods(enabled=True), payment_method_types=["card"])
    assert raised.value.param == "automatic_payment_methods"


def test_a_plain_card_is_set_up_at_once():
    si, attempt = confirm(new("pm_card_visa"), "pm_card_visa")
    assert si.status == S.SUCCEEDED and si.latest_attempt == "setatt_1"
    assert (
        attempt.status == SetupAttemptStatus.SUCCEEDED and attempt.payment_method == "pm_card_visa"
    )
    assert rules.event_type_for(new("pm_card_visa"), si) == "setup_intent.succeeded"


def test_a_declined_card_fails_with_its_codes_and_leaves_the_setup_intent():
    before = new("pm_card_chargeDeclinedInsufficientFunds")
    si, attempt = confirm(before, "pm_card_chargeDeclinedInsufficientFunds")
    assert si.status == S.REQUIRES_PAYMENT_METHOD and si.payment_method is None
    error = si.to_api()["last_setup_error"]
    assert error["type"] == "card_error" and error["code"] == "card_declined"
    assert error["decline_code"] == "insufficient_funds"
    assert error["payment_method"]["id"] == "pm_card_chargeDeclinedInsufficientFunds"
    assert "param" not in error  # Stripe leaves it out rather than null
    assert (
        attempt.status == SetupAttemptStatus.FAILED and attempt.setup_error == si.last_setup_error
    )
    assert rules.event_type_for(before, si) == "setup_intent.setup_failed"
    # the same decline again is a new attempt, and a new event
    again, _ = rules.attempted(
        si,
        card("pm_card_chargeDeclinedInsufficientFunds"),
        attempt_id="setatt_2",
        created=3,
        handover=rules.Handover(),
        action_url="u",
    )
    assert rules.event_type_for(si, again) == "setup_intent.setup_failed"


@pytest.mark.parametrize(
    "pm_id", ["pm_card_authenticationRequired", "pm_card_authenticationRequiredOnSetup"]
)
def test_cards_that_want_3ds_on_setup_wait_for_the_customer(pm_id: str):
    before = new(pm_id)
    si, attempt = confirm(before, pm_id)
    assert si.status == S.REQUIRES_ACTION and attempt.status == SetupAttemptStatus.REQUIRES_ACTION
    assert si.next_action is not None and si.next_action["type"] == "use_stripe_sdk"
    assert si.next_action["use_stripe_sdk"]["type"] == "three_d_secure_redirect"
    assert rules.event_type_for(before, si) == "setup_intent.requires_action"
    redirected, _ = confirm(before, pm_id, return_url="https://shop.example/back")
    assert redirected.next_action == {
        "type": "redirect_to_url",
        "redirect_to_url": {
            "return_url": "https://shop.example/back",
            "url": "http://127.0.0.1/v1/sandbox/setup_intents/seti_1/authenticate",
        },
    }


def test_authentication_passed_or_failed():
    pm = card("pm_card_authenticationRequiredOnSetup")
    waiting, attempt = confirm(new(pm.id), pm.id)
    done, done_attempt = rules.authenticated(waiting, attempt, pm, succeeded=True)
    assert done.status == S.SUCCEEDED and done.next_action is None
    assert done_attempt.status == SetupAttemptStatus.SUCCEEDED
    assert done_attempt.to_api()["payment_method_details"]["card"]["three_d_secure"]["result"] == (
        "authenticated"
    )
    failed, failed_attempt = rules.authenticated(waiting, attempt, pm, succeeded=False)
    assert failed.status == S.REQUIRES_PAYMENT_METHOD and failed.payment_method is None
    assert failed.last_setup_error is not None
    assert failed.last_setup_error.code == "setup_intent_authentication_failure"
    assert failed_attempt.status == SetupAttemptStatus.FAILED
    assert rules.event_type_for(waiting, failed) == "setup_intent.setup_failed"
    with pytest.raises(UnexpectedState):
        rules.authenticated(done, done_attempt, pm, succeeded=True)


def test_confirm_needs_a_payment_method_and_an_open_setup_intent():
    with pytest.raises(InvalidRequestError) as missing:
        rules.check_confirm(new(), None)
    assert missing.value.code == "setup_intent_unexpected_state"
    assert missing.value.param == "payment_method"
    assert rules.check_confirm(new("pm_card_visa"), None) == "pm_card_visa"
    succeeded, _ = confirm(new("pm_card_visa"), "pm_card_visa")
    with pytest.raises(UnexpectedState) as finished:
        rules.check_confirm(succeeded, None)
    assert "status of succeeded" in finished.value.message


def test_cancel_from_open_statuses_only():
    si = rules.canceled(new(), SetupCancellationReason.ABANDONED)
    assert si.status == S.CANCELED and si.to_api()["cancellation_reason"] == "abandoned"
    assert rules.event_type_for(new(), si) == "setup_intent.canceled"
    succeeded, _ = confirm(new("pm_card_visa"), "pm_card_visa")
    with pytest.raises(UnexpectedState) as refused:
        rules.canceled(succeeded, None)
    assert refused.value.message.startswith(
        "You cannot cancel this SetupIntent because it has a status of succeeded."
    )
    assert refused.value.extra["setup_intent"]["status"] == "succeeded"


def test_update_repoints_only_an_open_setup_intent_and_merges_metadata():
    si = rules.update(new(), {"payment_method": "pm_card_visa", "metadata": {"a": "1"}})
    assert si.status == S.REQUIRES_CONFIRMATION and si.metadata == {"a": "1"}
    si = rules.update(si, {"metadata": {"a": "", "b": "2"}, "description": "x"})
    assert si.metadata == {"b": "2"} and si.description == "x"
    succeeded, _ = confirm(si, "pm_card_visa")
    assert rules.update(succeeded, {"description": ""}).description is None
    with pytest.raises(UnexpectedState) as refused:
        rules.update(succeeded, {"payment_method": "pm_card_mastercard"})
    assert refused.value.param == "payment_method"
    assert refused.value.message.startswith(
        "This SetupIntent's payment_method could not be updated because it has a status of "
        "succeeded."
    )


def test_a_method_of_another_type_is_refused():
    upi = from_test_card("acct_1", describe("pm_upi_success"))  # type: ignore[arg-type]
    with pytest.raises(ParameterInvalid) as refused:
        rules.check_type(new(), upi)
    assert refused.value.param == "payment_method"
    rules.check_type(new(payment_method_types=["card", "upi"]), upi)


def test_return_url_and_use_stripe_sdk_only_with_confirm():
    for handover, param in (
        (rules.Handover(return_url="https://shop.example/back"), "return_url"),
        (rules.Handover(use_stripe_sdk=True), "use_stripe_sdk"),
    ):
        with pytest.raises(InvalidRequestError) as refused:
            handover.check_with(False)
        assert refused.value.param == param
        handover.check_with(True)


def test_stripe_js_gets_its_own_step_even_with_a_return_url():
    pm = card("pm_card_authenticationRequired")
    si, _ = rules.attempted(
        new(pm.id),
        pm,
        attempt_id="setatt_1",
        created=2,
        handover=rules.Handover(return_url="https://shop.example/back", use_stripe_sdk=True),
        action_url="u",
    )
    assert si.next_action is not None and si.next_action["type"] == "use_stripe_sdk"


def test_bodies_in_every_state_validate_against_stripes_schemas():
    pm = card("pm_card_authenticationRequiredOnSetup")
    created = new(customer="cus_1")
    waiting, attempt = confirm(rules.update(created, {"payment_method": pm.id}), pm.id)
    done, done_attempt = rules.authenticated(waiting, attempt, pm, succeeded=True)
    declined, declined_attempt = confirm(new(), "pm_card_chargeDeclined")
    saved = made_from(id="pm_2", merchant_id="acct_1", card=pm.test_card, created=3)
    auto = new(automatic=AutomaticPaymentMethods(enabled=True), usage=Usage.ON_SESSION)
    for si in (created, waiting, done, declined, auto, rules.canceled(created, None)):
        assert_stripe_shaped("setup_intent", si.to_api())
    for a in (attempt, done_attempt, declined_attempt, rules.abandoned(attempt)):
        assert_stripe_shaped("setup_attempt", a.to_api())
    saved_si, saved_attempt = rules.saved_as(done, done_attempt, saved.id)
    assert saved_si.payment_method == saved_attempt.payment_method == "pm_2"
    # the validator is strict enough to fail: a null where Stripe's schema says string
    broken = copy.deepcopy(done.to_api())
    broken["usage"] = None
    with pytest.raises(AssertionError):
        assert_stripe_shaped("setup_intent", broken)
