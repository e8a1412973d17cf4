"""Webhook signing, delivery ids, URL rules and the retry schedule: pure functions."""

from __future__ import annotations

import base64
import time

import pytest
import stripe
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from chalicelib.domain.webhooks import (
    EndpointStatus,
    RetrySchedule,
    WebhookEndpoint,
    check_enabled_events,
    check_url,
    delivery_id,
    parse_delivery_id,
)
from chalicelib.errors import ParameterInvalid
from chalicelib.webhooks.signing import new_secret, signature_headers, standard_signature

BODY = b'{"id":"evt_1","object":"event","type":"payment_intent.succeeded"}'


def test_standard_webhooks_test_vector() -> None:
    # Given the vector published by Standard Webhooks (PLATFORM_NOTES)
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

    # When
    signature = standard_signature(
        [secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )

    # Then
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_one_secret_is_accepted_by_both_libraries() -> None:
    # Given a secret from a deterministic rng
    secret = new_secret(rng=lambda n: bytes(range(n)))
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    now = int(time.time())

    # When
    headers = signature_headers([secret], "wd_1", now, BODY)

    # Then
    event = stripe.Webhook.construct_event(BODY.decode(), headers["Stripe-Signature"], secret)
    assert event["type"] == "payment_intent.succeeded"
    assert Webhook(secret).verify(BODY, headers)["id"] == "evt_1"


def test_during_a_roll_both_secrets_verify_and_a_stranger_does_not() -> None:
    # Given
    new, old, stranger = (new_secret() for _ in range(3))
    now = int(time.time())

    # When
    headers = signature_headers([new, old], "wd_1", now, BODY)

    # Then
    assert headers["Stripe-Signature"].count("v1=") == 2
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (new, old):
        stripe.Webhook.construct_event(BODY.decode(), headers["Stripe-Signature"], secret)
        Webhook(secret).verify(BODY, headers)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(BODY.decode(), headers["Stripe-Signature"], stranger)
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(BODY, headers)


def test_a_tampered_body_fails_both_checks() -> None:
    secret = new_secret()
    headers = signature_headers([secret], "wd_1", int(time.time()), BODY)
    tampered = BODY.replace(b"succeeded", b"canceled")
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(tampered.decode(), headers["Stripe-Signature"], secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)


def test_the_previous_secret_signs_only_until_it_expires() -> None:
    endpoint = WebhookEndpoint(
        id="we_1",
        merchant_id="acct_1",
        url="https://example.com/hooks",
        enabled_events=["*"],
        created=0,
        secret="whsec_new",
        previous_secret="whsec_old",
        previous_secret_expires_at=100,
    )
    assert endpoint.signing_secrets(99) == ["whsec_new", "whsec_old"]
    assert endpoint.signing_secrets(100) == ["whsec_new"]
    assert "secret" not in endpoint.to_api() and endpoint.to_api(with_secret=True)["secret"]


def test_delivery_ids_are_deterministic_and_reversible() -> None:
    event, endpoint = "evt_" + "A" * 8 + "b" * 16, "we_" + "C" * 8 + "d" * 16
    identifier = delivery_id(event, endpoint)
    assert identifier == delivery_id(event, endpoint)
    assert identifier != delivery_id(event, "we_" + "C" * 8 + "e" * 16)
    assert parse_delivery_id(identifier) == (event, endpoint)
    assert parse_delivery_id("wd_short") is None
    assert parse_delivery_id("evt_" + "A" * 48) is None


def test_subscriptions() -> None:
    endpoint = WebhookEndpoint(
        id="we_1",
        merchant_id="acct_1",
        url="https://example.com",
        enabled_events=["payment_intent.succeeded"],
        created=0,
        secret="whsec_x",
    )
    assert endpoint.subscribes_to("payment_intent.succeeded")
    assert not endpoint.subscribes_to("payment_intent.created")
    assert endpoint.model_copy(update={"enabled_events": ["*"]}).subscribes_to("x.y")
    disabled = endpoint.model_copy(update={"status": EndpointStatus.DISABLED})
    assert not disabled.subscribes_to("payment_intent.succeeded")
    assert check_enabled_events(["*", "*"]) == ["*"]
    with pytest.raises(ParameterInvalid):
        check_enabled_events(["payment_intent.exploded"])
    with pytest.raises(ParameterInvalid):
        check_enabled_events([])


def _resolver(table: dict[str, list[str]]):
    return lambda host: table[host]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hooks",
        "http://localhost/hooks",
        "https://10.1.2.3/hooks",
        "https://192.168.0.10/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9000/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "https://internal.example/",
    ],
)
def test_private_targets_are_refused_outside_the_sandbox(url: str) -> None:
    resolve = _resolver({"localhost": ["127.0.0.1"], "internal.example": ["10.0.0.5"]})
    with pytest.raises(ParameterInvalid) as refused:
        check_url(url, allow_private=False, resolve=resolve)
    assert refused.value.param == "url"
    # The sandbox allows them (receivers on the developer's machine)
    assert check_url(url, allow_private=True, resolve=resolve) == url


def test_public_targets_are_accepted_and_malformed_urls_refused() -> None:
    resolve = _resolver({"hooks.example.com": ["93.184.216.34"]})
    assert check_url("https://hooks.example.com/x", allow_private=False, resolve=resolve)
    for bad in (
        "ftp://hooks.example.com",
        "hooks.example.com",
        "https://u:p@hooks.example.com",
        "http://[hooks.example.com",
    ):
        with pytest.raises(ParameterInvalid):
            check_url(bad, allow_private=True, resolve=resolve)


def test_unresolvable_hosts_are_refused() -> None:
    def resolve(host: str) -> list[str]:
        raise OSError("no such host")

    with pytest.raises(ParameterInvalid):
        check_url("https://nowhere.invalid/", allow_private=False, resolve=resolve)


def test_retry_schedule() -> None:
    schedule = RetrySchedule.parse("0,5,300,1800,7200,18000,36000,36000")
    assert schedule.attempts == 8 and schedule.first_delay == 0
    assert schedule.delay_after(1) == 5
    assert schedule.delay_after(7) == 36000
    assert schedule.delay_after(8) is None
    for bad in ("", "a,b", "-1", "50000"):
        with pytest.raises(ValueError):
            RetrySchedule.parse(bad)
