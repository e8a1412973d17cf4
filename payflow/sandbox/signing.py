"""Requests to the embedded AWS carry SigV4's credential scope without its signature.

moto never checks a signature. It reads the `Authorization` header's credential scope: the
access key picks the account, the region and service route the request. Signing the rest
(the canonical request, its hash, four HMACs to derive the key and one to sign) was a tenth of
the handler process's CPU in a 10,000-payment chaos run, for nothing.

`install(host)` makes boto3's SigV4 signer write the same headers as it always does, the scope
included, and a fixed signature, for requests to `host` only: a request anywhere else (the
process may also talk to a real AWS account) is signed as before. Only the sandbox installs it;
the Lambda package never contains this module.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

from botocore import auth

_HOSTS: set[str] = set()
_LOCK = threading.Lock()
UNCHECKED_SIGNATURE = "0" * 64
"""What stands for the signature: as long as a real one, never checked."""


class ScopeOnlyAtSandbox(auth.SigV4Auth):
    """botocore's SigV4 signer (`auth.AUTH_TYPE_MAPS["v4"]`), which skips computing the
    signature of a request to one of the sandbox's hosts."""

    def add_auth(self, request: Any) -> None:
        if urlsplit(request.url).netloc not in _HOSTS:
            super().add_auth(request)
            return
        if self.credentials is None:
            raise auth.NoCredentialsError()
        # What SigV4Auth.add_auth does, but for the canonical request and its signature
        # (botocore's type stubs do not know these helpers).
        now = auth.get_current_datetime()  # type: ignore[attr-defined]
        request.context["timestamp"] = now.strftime(auth.SIGV4_TIMESTAMP)
        self._modify_request_before_signing(request)  # type: ignore[attr-defined]
        self._inject_signature_to_request(request, UNCHECKED_SIGNATURE)  # type: ignore[attr-defined]


def install(host: str) -> None:
    """Requests to `host` (`127.0.0.1:port`) are no longer signed for real, in this process."""
    with _LOCK:
        _HOSTS.add(host)
        auth.AUTH_TYPE_MAPS["v4"] = ScopeOnlyAtSandbox
