"""Figures for docs/persistence.md: restart time with many payments stored, and the cost of
journaling a write. A bounded local script, not a test:

    python -m payflow.sandbox.persistence_bench --payments 10000 --real 100

1. Write overhead: conditional PutItem calls per second from one client thread against an
   ephemeral embedded AWS and a durable one, in the same run.
2. Restart time: a durable sandbox (``python -m payflow.sandbox``) makes `real` payments
   through the API and stops; its snapshot is then grown in this process (`grow_snapshot`:
   items, stream records and executions copied with their keys suffixed) to as much as
   `payments` payments leave. Then: the time to start on it (restore), to stop with Ctrl-C
   (the last snapshot), and to start after a SIGKILL (restore plus journal replay).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from payflow.sandbox.aws import EmbeddedAws
from payflow.sandbox.child import ChildSandbox

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "sk_test_bench"


def put_rate(aws: EmbeddedAws, calls: int) -> float:
    """Conditional PutItem calls per second, one client thread, on a fresh table."""
    dynamodb = aws.client("dynamodb")
    table = f"bench-{time.monotonic_ns()}"
    dynamodb.create_table(
        TableName=table,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    item = {"data": {"S": "x" * 1500}, "status": {"S": "processing"}, "version": {"N": "1"}}
    for i in range(20):  # warm-up: connection, first-call imports
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"warm{i}"}, **item})
    started = time.perf_counter()
    for i in range(calls):
        dynamodb.put_item(
            TableName=table,
            Item={"pk": {"S": f"pi_{i}"}, **item},
            ConditionExpression="attribute_not_exists(pk)",
        )
    return calls / (time.perf_counter() - started)


def write_overhead(calls: int, rounds: int) -> dict[str, float]:
    """Median PutItem/s without and with a data directory, alternating rounds."""
    rates: dict[str, list[float]] = {"ephemeral": [], "durable": []}
    with tempfile.TemporaryDirectory() as directory:
        ephemeral = EmbeddedAws(port=0).start()
        durable = EmbeddedAws(port=0, data_dir=Path(directory) / "data").start()
        try:
            for _ in range(rounds):
                rates["ephemeral"].append(put_rate(ephemeral, calls))
                rates["durable"].append(put_rate(durable, calls))
        finally:
            ephemeral.stop()
            durable.stop()
    return {name: statistics.median(values) for name, values in rates.items()}


def real_payments(sandbox: ChildSandbox, count: int, batch: str) -> None:
    def one(i: int) -> None:
        requests.post(
            f"{sandbox.api_url}/v1/payment_intents",
            auth=(SECRET_KEY, ""),
            headers={"Idempotency-Key": f"bench-{batch}-{i}"},
            data={
                "amount": 1000 + i,
                "currency": "usd",
                "payment_method": "pm_card_visa",
                "confirm": "true",
            },
            timeout=60,
        ).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def grow_snapshot(data_dir: Path, copies: int) -> dict[str, int]:
    """The bulk path: every item, stream record and execution of the snapshot `copies` times
    more (keys and names suffixed, nothing shared between copies: each copy is unpickled on
    its own), written back as the snapshot a sandbox with that many payments would leave."""
    import pickle

    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import StreamRecord

    from payflow.sandbox import persistence

    path = data_dir / persistence.SNAPSHOT
    header, body = path.read_bytes().split(b"\n", 1)
    recorder = persistence.Recorder()
    recorder.load(body)
    grown = {"items": 0, "stream_records": 0, "executions": 0}
    for _, _, backend in persistence._regions("dynamodb"):
        for table in backend.tables.values():
            key = table.hash_key_attr
            originals = pickle.dumps(
                [
                    item
                    for bucket in list(table.items.values())
                    for item in (bucket.values() if table.range_key_attr else [bucket])
                ]
            )
            shard = table.stream_shard
            records = pickle.dumps([r.record for r in shard.items]) if shard else None
            for k in range(1, copies + 1):
                for item in pickle.loads(originals):
                    item.hash_key = DynamoType({"S": f"{item.hash_key.value}~{k}"})
                    item.attrs[key] = item.hash_key
                    if table.range_key_attr:
                        table.items[item.hash_key][item.range_key] = item
                    else:
                        table.items[item.hash_key] = item
                    grown["items"] += 1
                if shard is None or records is None:
                    continue
                for record in pickle.loads(records):
                    sequence = shard.starting_sequence_number + len(shard.items)
                    record["dynamodb"]["SequenceNumber"] = str(sequence)
                    record["eventID"] = f"{record['eventID']}{k}"
                    copied: Any = StreamRecord.__new__(StreamRecord)
                    copied.record = record
                    shard.items.append(copied)
                    grown["stream_records"] += 1
            if shard is not None:
                # As the pollers of a sandbox that made these payments would stand: at the end.
                stream_arn = f"{table.table_arn}/stream/{table.latest_stream_label}"
                last = str(shard.starting_sequence_number + len(shard.items) - 1)
                for checkpoint in [c for c in recorder.checkpoints if c[1] == stream_arn]:
                    recorder.checkpoints[checkpoint] = last
    for _, _, backend in persistence._regions("stepfunctions"):
        for machine in backend.state_machines:
            originals = pickle.dumps(
                [(type(e), persistence.execution_record(e)) for e in machine.executions]
            )
            for k in range(1, copies + 1):
                for cls, record in pickle.loads(originals):
                    record["name"] = f"{record['name']}~{k}"
                    record["exec_arn"] = record["execution_arn"] = f"{record['exec_arn']}~{k}"
                    restored = persistence._restored_execution(cls, record)
                    restored.state_machine = machine
                    machine.executions.append(restored)
                    grown["executions"] += 1
    path.write_bytes(header + b"\n" + recorder.capture())
    return grown


def restart_figures(payments: int, real: int, keep: Path | None) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="payflow-bench-"))
    data_dir = directory / "data"
    figures: dict[str, Any] = {"payments": payments, "real_payments": real}
    try:
        sandbox = ChildSandbox(
            data_dir,
            directory / "sandbox.log",
            {"PAYFLOW_SECRET_KEY": SECRET_KEY, "PAYFLOW_SANDBOX_TIME_SCALE": "0.01"},
        )
        figures["first_start_s"] = sandbox.start()
        started = time.monotonic()
        real_payments(sandbox, real, "first")
        figures["real_payments_s"] = time.monotonic() - started
        figures["stop_small_s"] = sandbox.stop()
        started = time.monotonic()
        figures["grown"] = grow_snapshot(data_dir, payments // real - 1)
        figures["grow_s"] = time.monotonic() - started
        figures["snapshot_mb"] = (data_dir / "snapshot.pickle").stat().st_size / 1e6
        figures["start_after_stop_s"] = sandbox.start()
        figures["restore_after_stop"] = sandbox.restored()
        started = time.monotonic()
        real_payments(sandbox, real, "second")
        figures["payments_after_restore_s"] = time.monotonic() - started
        figures["stop_with_snapshot_s"] = sandbox.stop()
        # A SIGKILL after more writes: the next start replays them from the journal.
        figures["start_again_s"] = sandbox.start()
        real_payments(sandbox, real, "third")
        sandbox.kill()
        journal = sum(p.stat().st_size for p in data_dir.glob("journal-*.log"))
        figures["journal_mb_after_kill"] = journal / 1e6
        figures["start_after_kill_s"] = sandbox.start()
        figures["restore_after_kill"] = sandbox.restored()
        sandbox.stop()
    finally:
        if keep is not None:
            shutil.copytree(directory, keep, dirs_exist_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m payflow.sandbox.persistence_bench")
    parser.add_argument("--payments", type=int, default=10_000)
    parser.add_argument("--real", type=int, default=100, help="payments made through the API")
    parser.add_argument("--put-calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="copy the data directory and log here")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    figures["put_item_per_s"] = write_overhead(args.put_calls, args.rounds)
    print(json.dumps(figures, indent=2), flush=True)
    figures.update(restart_figures(args.payments, args.real, args.keep))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
