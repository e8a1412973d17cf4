"""`python -m payflow.sandbox` (what `make dev` runs): the sandbox in the foreground."""

from __future__ import annotations

import logging
import signal
import sys
import threading

from payflow.sandbox.aws import EmbeddedAwsError
from payflow.sandbox.runtime import Sandbox, SandboxConfig
from payflow.sandbox.serving import PortInUseError

BANNER = """
  PayFlow sandbox is running (Ctrl-C stops it)

  API            {api}          docs: {api}/docs
  AWS endpoint   {aws}   (aws --endpoint-url {aws} dynamodb scan --table-name {table})
  Secret key     {key}     merchant {merchant}
  Admin key      {admin}    (POST {api}/v1/sandbox/merchants makes more merchants)

  curl {api}/v1/payment_intents -u {key}: -d amount=2000 -d currency=usd \\
       -d payment_method=pm_card_visa -d confirm=true
"""


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("waitress").setLevel(logging.WARNING)
    config = SandboxConfig.from_environ()
    sandbox = Sandbox(config)
    try:
        sandbox.start()
    except (PortInUseError, EmbeddedAwsError) as error:
        print(f"payflow: {error}", file=sys.stderr)
        sandbox.stop()
        return 2
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    assert sandbox.provisioned is not None
    print(
        BANNER.format(
            api=sandbox.api_url,
            aws=sandbox.aws_url,
            table=sandbox.provisioned.physical_ids["PaymentsTable"],
            key=config.secret_key,
            merchant=sandbox.demo_merchant["id"] if sandbox.demo_merchant else "",
            admin=config.admin_key,
        ),
        flush=True,
    )
    stopping.wait()
    print("payflow: stopping", flush=True)
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
