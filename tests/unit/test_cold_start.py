"""What a fresh Lambda process pays at `import app`: no SDK of a connector that is off, no
parameter model built before a request needs it (bench/cold_start.py measures the time)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chalicelib.api.params import CreatePaymentIntent, Params, validate
from chalicelib.connectors.stripe_connector import StripeConnector
from chalicelib.errors import ParameterUnknown
from tests.conftest import ROOT


def fresh_process(script: str) -> dict:
    """Run `script` (which prints one JSON line) in a new interpreter at the repository root."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = json.loads(done.stdout.splitlines()[-1])
    return result


def test_import_app_loads_neither_the_stripe_sdk_nor_the_tracer() -> None:
    # When a fresh process imports the functions' handler module
    loaded = fresh_process(
        "import json, sys, app; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )

    # Then the SDKs that only some calls use are not among its modules
    assert "app" in loaded and "chalicelib" in loaded
    assert {"stripe", "aws_xray_sdk"} & set(loaded) == set()


def test_import_app_builds_no_parameter_model() -> None:
    # When a fresh process imports the app, then validates one request's parameters
    built = fresh_process(
        "import json, app\n"
        "from chalicelib.api import params\n"
        "models = [m for m in vars(params).values() if isinstance(m, type)"
        " and issubclass(m, params.Params) and m is not params.Params]\n"
        "before = sorted(m.__name__ for m in models if m.__pydantic_complete__)\n"
        "params.CreatePaymentIntent.model_validate({'amount': '100', 'currency': 'usd'})\n"
        "after = sorted(m.__name__ for m in models if m.__pydantic_complete__)\n"
        "print(json.dumps({'models': len(models), 'before': before, 'after': after}))"
    )

    # Then no model was built at import, and the one used was built on that use
    assert built["models"] >= 10
    assert built["before"] == []
    assert built["after"] == ["CreatePaymentIntent"]


def test_a_model_built_on_first_use_still_refuses_unknown_parameters() -> None:
    # Given the deferred base configuration
    assert Params.model_config.get("defer_build") is True

    # Then the rules hold as before: unknown parameters are an error, known ones are parsed
    with pytest.raises(ParameterUnknown):
        validate(CreatePaymentIntent, {"amount": "100", "currency": "usd", "colour": "red"})
    parsed = validate(CreatePaymentIntent, {"amount": "100", "currency": "usd"})
    assert parsed.amount == 100


def test_the_stripe_sdk_is_imported_by_the_first_call_of_a_stripe_connector() -> None:
    # When a fresh process builds the connector, then calls it without a key
    seen = fresh_process(
        "import json, sys\n"
        "from chalicelib.connectors.stripe_connector import StripeConnector\n"
        "connector = StripeConnector(None)\n"
        "built = 'stripe' in sys.modules\n"
        "try:\n"
        "    connector.lookup('pi_1:1:stripe')\n"
        "except Exception as error:\n"
        "    refused = type(error).__name__\n"
        "print(json.dumps({'built': built, 'refused': refused,"
        " 'after': 'stripe' in sys.modules}))"
    )

    # Then building it imported nothing; the call imported the SDK and was refused
    assert seen == {"built": False, "refused": "ConnectorUnavailable", "after": True}
    assert StripeConnector(None).configured is False
