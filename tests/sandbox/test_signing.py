"""Requests to the embedded AWS carry SigV4's scope without its signature
(payflow/sandbox/signing.py); every other request is signed as botocore signs it."""

from __future__ import annotations

from typing import Any

from botocore import auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from chalicelib.container import services
from payflow.sandbox import signing

CREDENTIALS = Credentials("testing", "secret", "token")


def request(url: str) -> AWSRequest:
    return AWSRequest(
        method="POST",
        url=url,
        data=b'{"TableName": "t"}',
        headers={"X-Amz-Target": "DynamoDB_20120810.GetItem"},
    )


def test_a_request_to_the_sandbox_carries_the_scope_and_headers_a_signed_one_does() -> None:
    signing.install("127.0.0.1:4599")
    signer = signing.ScopeOnlyAtSandbox(CREDENTIALS, "dynamodb", "eu-west-1")
    real = auth.SigV4Auth(CREDENTIALS, "dynamodb", "eu-west-1")
    cheap, signed = request("http://127.0.0.1:4599/"), request("http://127.0.0.1:4599/")

    signer.add_auth(cheap)
    real.add_auth(signed)

    scope, headers, signature = cheap.headers["Authorization"].split(", ")
    date = cheap.context["timestamp"][:8]
    assert scope == f"AWS4-HMAC-SHA256 Credential=testing/{date}/eu-west-1/dynamodb/aws4_request"
    assert signature == "Signature=" + signing.UNCHECKED_SIGNATURE
    assert headers == signed.headers["Authorization"].split(", ")[1]
    assert cheap.headers["X-Amz-Security-Token"] == "token"
    assert set(cheap.headers.keys()) == set(signed.headers.keys())


def test_a_request_anywhere_else_is_signed_for_real() -> None:
    signing.install("127.0.0.1:4599")
    signer = signing.ScopeOnlyAtSandbox(CREDENTIALS, "dynamodb", "eu-west-1")
    real = auth.SigV4Auth(CREDENTIALS, "dynamodb", "eu-west-1")

    # Signed by both within one second (the signature covers the time, to the second)
    for _ in range(5):
        elsewhere = request("https://dynamodb.eu-west-1.amazonaws.com/")
        signed = request("https://dynamodb.eu-west-1.amazonaws.com/")
        signer.add_auth(elsewhere)
        real.add_auth(signed)
        if elsewhere.context["timestamp"] == signed.context["timestamp"]:
            break

    assert elsewhere.headers["Authorization"] == signed.headers["Authorization"]
    assert not elsewhere.headers["Authorization"].endswith(signing.UNCHECKED_SIGNATURE)


def test_the_handlers_requests_to_the_embedded_aws_are_not_signed_for_real(sandbox: Any) -> None:
    # Given the handlers' own DynamoDB client, in the session's sandbox
    client = services().dynamodb
    seen: list[str] = []

    def note(request: Any, **_: Any) -> None:
        seen.append(request.headers["Authorization"].decode())

    client.meta.events.register("before-send.dynamodb.ListTables", note)
    try:
        # When it calls the embedded AWS
        tables = client.list_tables()["TableNames"]
    finally:
        client.meta.events.unregister("before-send.dynamodb.ListTables", note)

    # Then moto answered from the scope alone, and nothing was signed
    assert services().settings.payments_table in tables
    assert seen and all(s.endswith("Signature=" + signing.UNCHECKED_SIGNATURE) for s in seen)
    assert auth.AUTH_TYPE_MAPS["v4"] is signing.ScopeOnlyAtSandbox
