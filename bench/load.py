"""Start an embedded sandbox on free ports and run locust headless against it (`make load`).

.venv/bin/python bench/load.py [-u 10] [-r 5] [-t 30s]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from payflow.sandbox.runtime import Sandbox, SandboxConfig  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-u", "--users", default="10")
    parser.add_argument("-r", "--spawn-rate", default="5")
    parser.add_argument("-t", "--run-time", default="30s")
    args = parser.parse_args(argv)
    key = "sk_test_load_demo"
    config = SandboxConfig(
        api_port=0,
        aws_port=0,
        secret_key=key,
        settings=(("PAYFLOW_LOG_LEVEL", "WARNING"),),
        time_scale=0.01,
    )
    with Sandbox(config) as sandbox:
        print(
            f"sandbox on {sandbox.api_url}; locust -u {args.users} -r {args.spawn_rate} "
            f"-t {args.run_time}",
            flush=True,
        )
        return subprocess.call(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "bench" / "locustfile.py"),
                "--headless",
                "-u",
                args.users,
                "-r",
                args.spawn_rate,
                "-t",
                args.run_time,
                "--host",
                sandbox.api_url,
                "--only-summary",
            ],
            env={**os.environ, "PAYFLOW_SECRET_KEY": key},
        )


if __name__ == "__main__":
    sys.exit(main())
