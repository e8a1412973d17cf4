"""`python -m payflow.deploy package|deploy|destroy` (what `make package`, `make deploy`,
`make deploy-localstack` and `make destroy` run).

AWS credentials and region come from the environment as boto3 finds them (AWS_PROFILE,
AWS_ACCESS_KEY_ID..., AWS_REGION). ``--endpoint-url`` targets LocalStack instead; without
credentials in the environment, LocalStack's conventional ``test``/``test`` are used there.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from payflow.deploy.cloudformation import DeployError, Target, deploy, destroy, stack_name_for
from payflow.deploy.package import REPO_ROOT, Package, PackageError, package

LOCALSTACK_URL = "http://localhost:4566"


def make_target(endpoint_url: str | None, environ: Mapping[str, str] | None = None) -> Target:
    """The boto3 session for AWS (environment credentials) or for an emulator endpoint."""
    import boto3

    env = os.environ if environ is None else environ
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if endpoint_url and not (env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_PROFILE")):
        session = boto3.session.Session(
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name=region or "us-east-1",
        )
    else:
        session = boto3.session.Session(region_name=region)
        if session.region_name is None:
            raise SystemExit("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION)")
        if session.get_credentials() is None:
            raise SystemExit(
                "no AWS credentials: set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY "
                "(or deploy to LocalStack with `make deploy-localstack`)"
            )
    return Target(session=session, endpoint_url=endpoint_url)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m payflow.deploy", description=__doc__)
    parser.add_argument(
        "command",
        choices=["package", "deploy", "destroy", "check"],
        help="check: only that the target's credentials and region are there (seconds, before "
        "`make deploy` packages for a minute)",
    )
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "dev")
    parser.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build")
    parser.add_argument("--stack-name", help="default: payflow-<stage>")
    parser.add_argument("--endpoint-url", help=f"an emulator, e.g. {LOCALSTACK_URL}")
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (repeatable)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    stack = args.stack_name or stack_name_for(args.stage)
    try:
        if args.command == "package":
            built = package(args.build_dir, stage=args.stage)
            print(f"packaged stage {args.stage} into {built.directory}")
            return 0
        target = make_target(args.endpoint_url)
        if args.command == "check":
            print(f"AWS region {target.session.region_name}, credentials found")
            return 0
        if args.command == "destroy":
            destroy(stack, target)
            return 0
        built = Package(args.build_dir.resolve())
        if not built.template_path.is_file():
            raise SystemExit(f"no package in {built.directory}: run `make package` first")
        parameters = dict(item.split("=", 1) for item in args.parameter)
        outputs = deploy(built, stack, target, parameters=parameters)
    except (PackageError, DeployError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for key, value in sorted(outputs.items()):
        print(f"  {key:28} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
