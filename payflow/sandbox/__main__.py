"""`python -m payflow.sandbox` (what `make dev` runs): the sandbox in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from payflow.sandbox.aws import EmbeddedAwsError
from payflow.sandbox.runtime import Sandbox, SandboxConfig
from payflow.sandbox.serving import PortInUseError

BANNER = """
  PayFlow sandbox is running (Ctrl-C stops it)

  API            {api}          docs: {api}/docs
  AWS endpoint   {aws}
  Secret key     {key}     merchant {merchant}
  Publishable    {publishable}   (browsers: with an intent's client_secret)
  Admin key      {admin}    (POST {api}/v1/sandbox/merchants makes more merchants)

  curl {api}/v1/payment_intents -u {key}: -d amount=2000 -d currency=usd \\
       -d payment_method=pm_card_visa -d confirm=true

  In another terminal:
    export AWS_ENDPOINT_URL={aws} AWS_ACCESS_KEY_ID=testing \\
           AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={region}
    aws dynamodb scan --table-name {table} --max-items 5
    .venv/bin/payflow trigger payment_intent.succeeded    .venv/bin/payflow listen
"""

DESCRIPTION = """Runs the PayFlow sandbox in the foreground: moto as AWS (in a child process),
the resources of infra/, the Lambda entry points driven by pollers, and the API. Ctrl-C stops
it. Configured by the environment: PAYFLOW_PORT (API, default 8000), PAYFLOW_AWS_PORT (AWS
endpoint, default 4566), PAYFLOW_HOST, PAYFLOW_SECRET_KEY (the demo merchant's key),
PAYFLOW_ADMIN_KEY, PAYFLOW_SANDBOX_TIME_SCALE (factor on Step Functions waits),
PAYFLOW_LOG_FORMAT (text or json)."""


def main(argv: Sequence[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m payflow.sandbox", description=DESCRIPTION).parse_args(
        sys.argv[1:] if argv is None else argv
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("waitress").setLevel(logging.WARNING)
    from chalicelib.observability import quiet_libraries

    quiet_libraries()
    # Set before starting: a Ctrl-C while it starts stops it cleanly once it is up.
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    config = SandboxConfig.from_environ()
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except (PortInUseError, EmbeddedAwsError) as error:
        print(f"payflow: {error}", file=sys.stderr)
        sandbox.stop()
        return 2
    assert sandbox.provisioned is not None
    print(
        BANNER.format(
            api=sandbox.api_url,
            aws=sandbox.aws_url,
            region=sandbox.provisioned.region,
            table=sandbox.provisioned.physical_ids["PaymentsTable"],
            key=config.secret_key,
            publishable=(sandbox.demo_merchant or {}).get("publishable_key", ""),
            merchant=sandbox.demo_merchant["id"] if sandbox.demo_merchant else "",
            admin=config.admin_key,
        ),
        flush=True,
    )
    stopping.wait()
    print("payflow: stopping", flush=True)
    sandbox.stop()
    print("payflow: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
