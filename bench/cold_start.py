"""Cold start: what a fresh Lambda process pays before and at its first call.

- ``import app`` (every function's handler module) next to a bare ``import boto3``, each the
  median of fresh processes, and their ratio (issue 14's target: at most 1.3).
- Per function: the import, then a first and a second call of the same event, in a fresh
  process of its own; first minus second is what the first call builds (clients, settings,
  parameter models, lazily imported modules), and the modules it imported are listed. The
  events are recorded from one payment and one refund through the embedded sandbox, then
  replayed: the handlers are safe to run twice, so a replay finds its work done and the
  figures are the first-use cost, not a payment's work.
- Per function, its own import time: in another fresh process, ``import app`` then exactly
  the modules that function's first call imported, and nothing run: what that function
  imports, apart from what its first call builds.

    .venv/bin/python bench/cold_start.py [--runs 7] [--function-runs 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN_KEY = "sk_admin_cold_start"
# Wall and CPU time of one import: on a busy shared machine the CPU time varies less.
IMPORT_PROBE = (
    "import time; t, c = time.perf_counter(), time.process_time(); import {module}; "
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)"
)
# Runs in a fresh process: import app, call one handler twice with the event on stdin.
CALL_PROBE = """
import json, sys, time
spec = json.loads(sys.stdin.read())
started, started_cpu = time.perf_counter(), time.process_time()
import app
imported, imported_cpu = time.perf_counter(), time.process_time()


class Context:
    function_name = "payflow-dev-" + spec["function"]
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:" + function_name
    aws_request_id = "cold-start-probe"
    log_group_name = log_stream_name = "cold-start"

    def get_remaining_time_in_millis(self):
        return 30_000


handler = app.app if spec["function"] == "api_handler" else getattr(app, spec["function"])
before = set(sys.modules)
calls, cpu, errors = [], [], []
for _ in range(2):
    began, began_cpu = time.perf_counter(), time.process_time()
    try:
        handler(spec["event"], Context())
    except Exception as error:  # a replay may be refused; its cost still counts
        errors.append(type(error).__name__)
    calls.append((time.perf_counter() - began) * 1000)
    cpu.append((time.process_time() - began_cpu) * 1000)
    if len(calls) == 1:
        new = [name for name in sys.modules if name not in before]  # in import order
        loaded = [len(new), sorted({name.split(".")[0] for name in new})]
print(json.dumps({
    "import_ms": (imported - started) * 1000,
    "import_cpu_ms": (imported_cpu - started_cpu) * 1000,
    "first_ms": calls[0],
    "second_ms": calls[1],
    "first_cpu_ms": cpu[0],
    "second_cpu_ms": cpu[1],
    "first_call_imports": loaded,
    "first_call_modules": new,
    "errors": errors,
}))
"""
# Runs in a fresh process: import app, then the modules a function's first call imported.
FUNCTION_IMPORT_PROBE = """
import importlib, json, sys, time
modules = json.loads(sys.stdin.read())
started, started_cpu = time.perf_counter(), time.process_time()
import app
imported, imported_cpu = time.perf_counter(), time.process_time()
for name in modules:
    try:
        importlib.import_module(name)
    except Exception:  # a module only importable as a side effect of another: counted there
        pass
print(json.dumps({
    "own_imports_ms": (time.perf_counter() - imported) * 1000,
    "own_imports_cpu_ms": (time.process_time() - imported_cpu) * 1000,
    "function_import_ms": (time.perf_counter() - started) * 1000,
    "function_import_cpu_ms": (time.process_time() - started_cpu) * 1000,
}))
"""
# Functions with no event of their own in one payment's flow get a synthetic one.
SYNTHETIC_EVENTS: dict[str, Any] = {
    "release_funds": {
        "version": "0",
        "id": "cold-start",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {},
    },
    "redrive_webhooks": {"limit": 10},
}


def _clean_environment() -> dict[str, str]:
    """The shell's environment without the sandbox's, any endpoint override, or a ban on
    bytecode files: site-packages has its .pyc from the install, so app's modules get theirs
    too, or the comparison would time compiling chalicelib against loading boto3."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAYFLOW_", "AWS_ENDPOINT")) and k != "PYTHONDONTWRITEBYTECODE"
    }


def import_times(
    runs: int = 7,
    *,
    flags: tuple[str, ...] = (),
    prelude: str = "",
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Median import time (ms, wall and CPU) of ``app`` and of a bare ``boto3``, fresh
    processes, and the ratios app / boto3. The two alternate, so a busy moment of the machine
    hits both; one unmeasured import of each first writes the bytecode caches it may."""
    samples: dict[str, list[list[float]]] = {"app": [], "boto3": []}
    for run in range(runs + 1):
        for module, times in samples.items():
            done = subprocess.run(
                [sys.executable, *flags, "-c", prelude + IMPORT_PROBE.format(module=module)],
                cwd=cwd,
                env=_clean_environment() if env is None else env,
                capture_output=True,
                text=True,
                check=True,
            )
            if run:
                times.append([float(value) for value in done.stdout.split()])
    figures: dict[str, Any] = {"runs": runs}
    for clock, index in (("", 0), ("cpu_", 1)):
        app_ms = statistics.median(sample[index] for sample in samples["app"])
        boto3_ms = statistics.median(sample[index] for sample in samples["boto3"])
        figures[f"app_{clock}ms"] = round(app_ms, 1)
        figures[f"bare_boto3_{clock}ms"] = round(boto3_ms, 1)
        figures[f"{clock}ratio"] = round(app_ms / boto3_ms, 2)
    return figures


def package_import_times(archive: Path, runs: int = 7) -> dict[str, Any]:
    """`import_times` inside `archive` (a deployment.zip) unpacked, as Lambda runs it: only
    the package and the standard library on the path (-S), no bytecode written (Lambda's
    /var/task is read-only, and the package ships sources only)."""
    with tempfile.TemporaryDirectory(prefix="payflow-cold-start-") as unpacked:
        with zipfile.ZipFile(archive) as package:
            package.extractall(unpacked)
        figures = import_times(
            runs,
            flags=("-S", "-B"),
            prelude=f"import sys; sys.path.insert(0, {unpacked!r}); ",
            cwd=Path(unpacked),
            env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", "")},
        )
    return {"archive": str(archive), **figures}


class EventRecorder:
    """The first event each Lambda function of the app receives, as Lambda hands it over."""

    def __init__(self, app: Any) -> None:
        self.events: dict[str, Any] = {}
        for name, handler in app.handler_map.items():
            if hasattr(handler, "event_class"):  # a Lambda entry point, not a route view
                handler.func = self._recording(name, handler.func)
                # Chalice wraps `func` in the middleware on the first call and keeps that
                # wrapper: a process that already ran the handler (make bench) must rebuild it.
                handler.handler = None
        app.register_middleware(self._record_request, "http")

    def _recording(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(event: Any, *args: Any) -> Any:
            self.events.setdefault(name, event.to_dict())
            return func(event, *args)

        return recorded

    def _record_request(self, request: Any, get_response: Callable[[Any], Any]) -> Any:
        route = f"{request.method} {request.context['resourcePath']}"
        self.events.setdefault(f"api_handler {route}", request.to_original_event())
        return get_response(request)


def first_calls(runs: int = 3) -> dict[str, Any]:
    """Every function's figures (`measure_functions`), replaying the events of one confirmed
    payment (its webhook delivered), a retrieve and a refund, recorded in a sandbox."""
    import requests

    from app import app
    from bench.run import subscribed_receiver
    from payflow.sandbox.runtime import Sandbox, SandboxConfig

    recorder = EventRecorder(app)
    config = SandboxConfig(
        api_port=0,
        aws_port=0,
        admin_key=ADMIN_KEY,
        secret_key="sk_test_cold_start",
        settings=(("PAYFLOW_LOG_LEVEL", "CRITICAL"),),
        time_scale=0.01,
    )
    with Sandbox(config) as sandbox:
        api = sandbox.api_url
        session = requests.Session()
        session.auth = ("sk_test_cold_start", "")
        receiver, _endpoint_id = subscribed_receiver(session, api)
        intent = session.post(
            f"{api}/v1/payment_intents",
            data={
                "amount": 1000,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
            headers={"Idempotency-Key": "cold-start-payment"},
            timeout=30,
        ).json()
        session.get(f"{api}/v1/payment_intents/{intent['id']}", timeout=10)
        session.post(
            f"{api}/v1/refunds",
            data={"payment_intent": intent["id"], "amount": 300},
            headers={"Idempotency-Key": "cold-start-refund"},
            timeout=30,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not {
            "deliver_webhooks",
            "refund_settle",
        } <= set(recorder.events):
            time.sleep(0.05)
        sandbox.pollers.wait_idle(timeout=30)
        # The replays reach this sandbox: its AWS endpoint and the handlers' environment.
        environment = dict(os.environ)
        events = dict(recorder.events)
        per_function = measure_functions(events, environment, runs)
    receiver.close()
    entry_points = {n for n, h in app.handler_map.items() if hasattr(h, "event_class")}
    measured = {label.split(" ", 1)[0] for label in per_function}
    return {"measured": per_function, "not_exercised": sorted(entry_points - measured)}


def measure_functions(
    events: dict[str, Any], environment: dict[str, str], runs: int = 3
) -> dict[str, Any]:
    """Each recorded (and synthetic) event replayed in fresh processes, then the function's own
    imports timed in fresh processes (`FUNCTION_IMPORT_PROBE`): medians per function."""
    env = {k: v for k, v in environment.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, Any] = {}
    for label, event in sorted({**SYNTHETIC_EVENTS, **events}.items()):
        function = label.split(" ", 1)[0]
        spec = json.dumps({"function": function, "event": event}, default=_text)
        samples = [_probe(CALL_PROBE, spec, env) for _ in range(runs)]
        modules = json.dumps(samples[-1]["first_call_modules"])
        own = [_probe(FUNCTION_IMPORT_PROBE, modules, env) for _ in range(runs)]
        results[label] = {
            key: round(statistics.median(s[probe_key] for s in samples), 1)
            for key, probe_key in (
                ("import_ms", "import_ms"),
                ("import_cpu_ms", "import_cpu_ms"),
                ("first_call_ms", "first_ms"),
                ("second_call_ms", "second_ms"),
                ("first_call_cpu_ms", "first_cpu_ms"),
                ("second_call_cpu_ms", "second_cpu_ms"),
            )
        }
        results[label] |= {
            key: round(statistics.median(s[key] for s in own), 1)
            for key in (
                "own_imports_ms",
                "own_imports_cpu_ms",
                "function_import_ms",
                "function_import_cpu_ms",
            )
        }
        results[label] |= {
            "first_call_imports": samples[-1]["first_call_imports"],
            "errors": samples[-1]["errors"],
        }
    return results


def _probe(script: str, stdin: str, env: dict[str, str]) -> dict[str, Any]:
    """Run a probe in a fresh interpreter at the repository root; its last line, parsed."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=stdin,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _text(value: Any) -> str:
    # The local gateway hands the API a bytes body where API Gateway gives a string.
    if isinstance(value, bytes):
        return value.decode("utf-8")
    raise TypeError(f"{type(value).__name__} in a recorded event")


def measure(runs: int = 7, function_runs: int = 3, package: Path | None = None) -> dict[str, Any]:
    """The import ratio, every function's first-call figures (see the module docstring), and
    the import ratio inside `package` (a built deployment.zip) when given."""
    figures: dict[str, Any] = {"imports": import_times(runs)}
    if package is not None:
        figures["package_imports"] = package_import_times(package, runs)
    if function_runs:
        figures.update(first_calls(function_runs))
    return figures


def table(figures: dict[str, Any]) -> str:
    """Markdown: the import ratio, then one row per function."""
    lines = []
    for key, where in (("imports", "dev tree"), ("package_imports", "deployment.zip")):
        if key in figures:
            imports = figures[key]
            lines.append(
                f"{where}: import app {imports['app_ms']} ms / bare import boto3"
                f" {imports['bare_boto3_ms']} ms = {imports['ratio']}; CPU"
                f" {imports['app_cpu_ms']} / {imports['bare_boto3_cpu_ms']} ms ="
                f" {imports['cpu_ratio']} (medians of {imports['runs']} fresh processes each)"
            )
    lines += [
        "",
        "Per function (medians of fresh processes): its import time is `import app` plus the"
        " modules its first call imports, timed without running anything; the first call's extra"
        " over the second is what it builds (clients, settings, models) including those imports.",
        "",
        "| function (event) | import app ms (CPU) | + its own imports ms (CPU) |"
        " = function's import ms (CPU) | first call ms (CPU) | second call ms (CPU)"
        " | first-call extra ms (CPU) | imported by the first call |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for label, row in figures.get("measured", {}).items():
        extra = round(row["first_call_ms"] - row["second_call_ms"], 1)
        extra_cpu = round(row["first_call_cpu_ms"] - row["second_call_cpu_ms"], 1)
        count, packages = row["first_call_imports"]
        imported = f"{count} modules: {', '.join(packages)}" if count else "-"
        errors = f" (raised {', '.join(row['errors'])})" if row["errors"] else ""
        lines.append(
            f"| {label}{errors} | {row['import_ms']} ({row['import_cpu_ms']}) |"
            f" {row['own_imports_ms']} ({row['own_imports_cpu_ms']}) |"
            f" {row['function_import_ms']} ({row['function_import_cpu_ms']}) |"
            f" {row['first_call_ms']} ({row['first_call_cpu_ms']}) |"
            f" {row['second_call_ms']} ({row['second_call_cpu_ms']}) |"
            f" {extra} ({extra_cpu}) | {imported} |"
        )
    if figures.get("not_exercised"):
        lines.append(f"\nnot exercised by one payment and one refund: {figures['not_exercised']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per import")
    parser.add_argument(
        "--function-runs", type=int, default=3, help="fresh processes per function (0: none)"
    )
    parser.add_argument(
        "--package", type=Path, help="also time the imports inside this deployment.zip"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = measure(args.runs, args.function_runs, args.package)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(table(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
