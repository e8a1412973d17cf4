"""What a fresh Lambda process pays at `import app`: beyond boto3, only Chalice and the
routes' registration; no SDK of a connector that is off, no pydantic, no Powertools, no
parameter model built before a request needs it; and what each function's first call builds:
its own services, not every function's (bench/cold_start.py measures the time)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from chalicelib.api.params import CreatePaymentIntent, Params, validate
from chalicelib.connectors.stripe_connector import StripeConnector
from chalicelib.container import _Lazily, lazy
from chalicelib.errors import ParameterUnknown
from tests.conftest import ROOT

# What Settings requires, for a process that builds services without reaching AWS.
SETTINGS = {
    "PAYFLOW_PAYMENTS_TABLE": "payments",
    "PAYFLOW_IDEMPOTENCY_TABLE": "idempotency",
    "PAYFLOW_SIMULATOR_TABLE": "simulator",
    "PAYFLOW_PAYMENT_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:000000000000:stateMachine:p",
    "PAYFLOW_REFUND_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:000000000000:stateMachine:r",
    "PAYFLOW_WEBHOOK_QUEUE_URL": "http://127.0.0.1:1/000000000000/payflow-webhooks",
}


def fresh_process(script: str, env: dict[str, str] | None = None) -> dict:
    """Run `script` (which prints one JSON line) in a new interpreter at the repository root."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict = json.loads(done.stdout.splitlines()[-1])
    return result


def test_import_app_imports_chalice_and_nothing_else_beyond_boto3() -> None:
    # When a fresh process imports boto3, then the functions' handler module
    imported = fresh_process(
        "import json, sys, boto3\n"
        "before = set(sys.modules)\n"
        "import app\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(new - set(sys.stdlib_module_names))))"
    )

    # Then the only packages it added are Chalice's runtime and PayFlow's own
    assert imported == ["app", "chalice", "chalicelib"]


def test_import_app_loads_no_parameter_model_domain_model_or_service() -> None:
    # When a fresh process imports the app
    loaded = fresh_process(
        "import json, sys, app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('chalicelib.'))))"
    )

    # Then the routes are registered without their models, and no service module is loaded
    assert "chalicelib.api.payment_intents" in loaded and "chalicelib.container" in loaded
    assert "chalicelib.api.params" not in loaded
    assert [m for m in loaded if m.startswith(("chalicelib.dal", "chalicelib.webhooks"))] == []
    assert [m for m in loaded if m.startswith("chalicelib.services.")] == [
        "chalicelib.services.expand"
    ]
    assert [m for m in loaded if m.startswith("chalicelib.domain.")] == ["chalicelib.domain.ids"]


# What each Lambda function's handler asks the container for (app.py), and modules that belong
# to other functions only.
FIRST_USES = [
    (
        "authorize_payment",
        "services().orchestrator",
        ["services.payment_intents", "services.refunds", "services.setup_intents", "webhooks."],
    ),
    (
        "finalize_payment",
        "services().payment_intents",
        ["services.refunds", "services.setup_intents", "webhooks.", "services.merchants"],
    ),
    (
        "deliver_webhooks",
        "webhooks().deliverer",
        ["services.", "connectors.", "webhooks.relay", "dal.ledger", "dal.idempotency"],
    ),
    (
        "relay_events",
        "webhooks().relay",
        ["services.", "connectors.", "webhooks.delivery", "webhooks.sender", "dal.ledger"],
    ),
    (
        "refund_settle",
        "services().refunds",
        ["services.payment_intents", "services.setup_intents", "services.orchestration"],
    ),
    ("release_funds", "services().ledger", ["services.refunds", "connectors.", "webhooks."]),
    # The webhook HTTP client is imported by the first webhook sent, not by building the service.
    (
        "simulator_tick",
        "services().simulator",
        ["services.refunds", "services.setup_intents", "webhooks."],
    ),
]


@pytest.mark.parametrize(("function", "uses", "others"), FIRST_USES, ids=[f[0] for f in FIRST_USES])
def test_a_function_builds_and_imports_the_services_it_calls_only(
    function: str, uses: str, others: list[str]
) -> None:
    # Given a fresh process that imported the app (settings as on AWS, no call to AWS made)
    # When it builds what the function's handler asks for
    loaded = fresh_process(
        "import json, sys, app\n"
        "from chalicelib.container import services, webhooks\n"
        "before = set(sys.modules)\n"
        f"built = {uses}\n"
        "print(json.dumps({'built': type(built).__name__,"
        " 'modules': sorted(m for m in set(sys.modules) - before if m.startswith('chalicelib.')),"
        " 'api': 'chalicelib.api.params' in sys.modules, 'stripe': 'stripe' in sys.modules}))",
        SETTINGS,
    )

    # Then it built that service, and imported none of the modules only other functions run
    assert loaded["built"] and loaded["modules"]
    assert [
        m for m in loaded["modules"] if m.removeprefix("chalicelib.").startswith(tuple(others))
    ] == []
    assert loaded["api"] is False and loaded["stripe"] is False


def test_every_route_names_a_parameters_model_that_exists() -> None:
    # Given every route the app serves
    from app import app
    from chalicelib.api.http import endpoint_spec

    specs = [
        endpoint_spec(entry.view_function)
        for methods in app.routes.values()
        for entry in methods.values()
    ]
    declared = [spec for spec in specs if spec is not None and spec.params_model is not None]

    # Then each model name resolves, on first use, to a parameters model
    assert len(declared) >= 50
    assert all(issubclass(spec.params, Params) for spec in declared)  # type: ignore[arg-type]


class _Counted(_Lazily):
    def __init__(self) -> None:
        super().__init__()
        self.builds = 0

    @lazy
    def service(self) -> object:
        self.builds += 1
        time.sleep(0.02)  # long enough for every thread to arrive while it is being built
        return object()


def test_a_lazy_service_is_built_once_however_many_threads_ask_at_once() -> None:
    # Given a container whose service takes a while to build
    container = _Counted()
    start = threading.Barrier(8)
    seen: list[object] = []

    def ask() -> None:
        start.wait()
        seen.append(container.service)

    # When eight threads ask for it at the same moment
    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then it was built once, and every thread got that one instance
    assert container.builds == 1
    assert len(seen) == 8 and all(service is seen[0] for service in seen)
    assert type(container).service.is_built(container)  # type: ignore[attr-defined]


def test_import_app_loads_neither_the_stripe_sdk_nor_the_tracer() -> None:
    # When a fresh process imports the functions' handler module
    loaded = fresh_process(
        "import json, sys, app; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )

    # Then the SDKs that only some calls use are not among its modules
    assert "app" in loaded and "chalicelib" in loaded
    assert {"stripe", "aws_xray_sdk", "aws_lambda_powertools", "pydantic", "moto"} & set(
        loaded
    ) == set()


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
