"""Where the running sandbox is, and one-line reasons when it cannot be reached.

Every `payflow` command and `make chalice-local` find the sandbox the same way, first match wins:

1. explicit values (a command's ``--api-base`` / ``--aws-endpoint``);
2. the environment: ``PAYFLOW_API_BASE``, ``PAYFLOW_PORT`` (with ``PAYFLOW_HOST``) for the API;
   ``PAYFLOW_AWS_PORT``, then ``AWS_ENDPOINT_URL`` for the embedded AWS;
3. the state file a running sandbox leaves in its data directory (``$PAYFLOW_DATA_DIR``, default
   ``.payflow/`` in the checkout): ``sandbox.json``, with ``api_url``/``aws_url`` (or
   ``api_port``/``aws_port``). A missing or unreadable file is simply skipped;
4. the sandbox's defaults, 127.0.0.1:8000 and 127.0.0.1:4566.
"""

from __future__ import annotations

import json
import os
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8000
DEFAULT_AWS_PORT = 4566
STATE_FILE = "sandbox.json"
DEMO_SECRET_KEY = "sk_test_payflow"
"""The demo merchant's key the sandbox prints in its banner (PAYFLOW_SECRET_KEY changes it)."""
DUMMY_AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
"""What a client of the embedded AWS needs: any credentials and a region (moto checks neither
against an account, but botocore refuses to sign without them)."""


class CliError(Exception):
    """A failure to report in one line (no traceback)."""


@dataclass(frozen=True)
class Endpoints:
    """The API and the embedded AWS of one sandbox."""

    api_url: str
    aws_url: str


def data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The sandbox's data directory: ``$PAYFLOW_DATA_DIR`` or ``.payflow/`` in the checkout."""
    env = os.environ if environ is None else environ
    configured = env.get("PAYFLOW_DATA_DIR")
    return Path(configured).expanduser() if configured else ROOT / ".payflow"


def read_state(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The running sandbox's state file, or {} when there is none (or it cannot be read)."""
    try:
        state = json.loads((data_dir(environ) / STATE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def find(
    environ: Mapping[str, str] | None = None,
    *,
    api_url: str | None = None,
    aws_url: str | None = None,
) -> Endpoints:
    """The sandbox's endpoints, by the order in this module's docstring."""
    env = os.environ if environ is None else environ
    host = env.get("PAYFLOW_HOST", DEFAULT_HOST)
    if host in ("0.0.0.0", ""):
        host = DEFAULT_HOST
    state = read_state(env)

    def from_state(url_key: str, port_key: str) -> str | None:
        if state.get(url_key):
            return str(state[url_key])
        if state.get(port_key):
            return f"http://{host}:{int(state[port_key])}"
        return None

    api = (
        api_url
        or env.get("PAYFLOW_API_BASE")
        or (f"http://{host}:{int(env['PAYFLOW_PORT'])}" if env.get("PAYFLOW_PORT") else None)
        or from_state("api_url", "api_port")
        or f"http://{host}:{DEFAULT_API_PORT}"
    )
    aws = (
        aws_url
        or (
            f"http://{host}:{int(env['PAYFLOW_AWS_PORT'])}" if env.get("PAYFLOW_AWS_PORT") else None
        )
        or env.get("AWS_ENDPOINT_URL")
        or from_state("aws_url", "aws_port")
        or f"http://{host}:{DEFAULT_AWS_PORT}"
    )
    return Endpoints(api_url=api.rstrip("/"), aws_url=aws.rstrip("/"))


def listening(url: str, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at `url`'s host and port."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or DEFAULT_HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_api(endpoints: Endpoints) -> str:
    """The API's URL; CliError in one line when nothing listens there."""
    if not listening(endpoints.api_url):
        raise CliError(
            f"no sandbox API at {endpoints.api_url}: start one with `make dev` "
            "(or point PAYFLOW_PORT / PAYFLOW_API_BASE at yours)"
        )
    return endpoints.api_url


def require_aws(endpoints: Endpoints) -> str:
    """The embedded AWS's URL; CliError in one line when nothing listens there."""
    if not listening(endpoints.aws_url):
        raise CliError(
            f"no sandbox AWS endpoint at {endpoints.aws_url}: start one with `make dev` "
            "(or point PAYFLOW_AWS_PORT / AWS_ENDPOINT_URL at yours)"
        )
    return endpoints.aws_url


def aws_client(service: str, endpoint_url: str, environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 client for the embedded AWS: the shell's credentials and region when it has
    them, the sandbox's dummy ones otherwise."""
    import boto3

    env = os.environ if environ is None else environ
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint_url,
        region_name=env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
        or DUMMY_AWS_ENVIRONMENT["AWS_DEFAULT_REGION"],
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID")
        or DUMMY_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY")
        or DUMMY_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    )


def explain_aws_error(error: BaseException) -> str | None:
    """One line for the botocore errors a user can fix (None for anything else)."""
    from botocore import exceptions

    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return (
            "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
            "(the sandbox itself needs none)"
        )
    if isinstance(error, exceptions.NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)"
    if isinstance(error, exceptions.EndpointConnectionError | exceptions.ConnectionClosedError):
        return f"cannot reach AWS at {getattr(error, 'kwargs', {}).get('endpoint_url', '?')}"
    if isinstance(error, exceptions.ClientError):
        info = error.response.get("Error", {})
        return f"AWS answered {info.get('Code', '?')}: {info.get('Message', '')}".rstrip(": ")
    if isinstance(error, exceptions.BotoCoreError):
        return f"AWS: {error}"
    return None
