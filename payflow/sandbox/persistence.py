"""Durable state for the embedded AWS: moto's DynamoDB, SQS and Step Functions survive a restart.

Runs in the moto process (payflow/sandbox/aws_server.py). The data directory holds:

- ``snapshot.pickle``: moto's backends, pickled between whole requests (the DynamoDB and SQS
  request locks of `aws_server.OneAtATime` held), written to a temporary file and renamed;
- ``journal-NNNNNN.log``: what every request changed since that snapshot, one framed entry per
  request (length, CRC-32, pickle), written with one ``write`` before the response goes out and
  fsynced about once a second. A torn last entry (the process died while writing it) fails its
  CRC and is dropped, so a restart sees a prefix of the requests, never half of one;
- ``lock``: held (flock) by the process that uses the directory.

The journal records effects, not requests: the items a DynamoDB request left (and the stream
records it appended), the messages an SQS request changed, the Step Functions executions that
started or ended. Replaying a request would not do: SQS receipt handles and message ids are
random, so a replayed DeleteMessage would miss its message.

Executions cannot be pickled mid-flight (a worker thread holds them). A snapshot keeps each
execution as a record; one that was running is started again under its name and input when
the sandbox says it is ready (`resume_executions`): its tasks are safe to run twice, and the PSP
idempotency key of an attempt is the same, so the payment ends without a second charge.

docs/persistence.md describes the guarantees, the limits and the figures.
"""

from __future__ import annotations

import contextlib
import copy
import copyreg
import datetime
import fcntl
import functools
import io
import logging
import os
import pickle
import struct
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".payflow"
"""`.payflow/` in the checkout (``PAYFLOW_DATA_DIR`` moves it)."""
RUNNING_FILE = "sandbox.json"
"""In the data directory while a sandbox runs: its URLs and process ids, for tools."""
FORMAT = 1
"""Bumped when the files change shape: an older directory is refused, not misread."""
SNAPSHOT = "snapshot.pickle"
LOCK = "lock"
JOURNAL_GLOB = "journal-*.log"
STREAM_RETENTION_SECONDS = 24 * 3600
"""DynamoDB Streams keeps records 24 hours; moto keeps them forever, so a restore trims them."""
FSYNC_INTERVAL_SECONDS = 1.0
COMPACT_AFTER_BYTES = 64 * 1024 * 1024
"""A journal this long, and longer than the snapshot, is folded into a new snapshot: restarts
replay less, and a large state is not pickled again for every few MB of writes (requests wait
while it pickles)."""

SERVICES = ("dynamodb", "sqs", "stepfunctions")
_FRAME = struct.Struct(">II")  # payload length, CRC-32 of the payload

DYNAMODB_READS = frozenset(
    {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
    | {"DescribeTable", "DescribeTimeToLive", "DescribeContinuousBackups", "ListTables"}
    | {"ListTagsOfResource", "DescribeEndpoints", "DescribeLimits", "ListBackups"}
)
DYNAMODB_ITEM_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
    | {"ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction"}
)
"""Everything else a DynamoDB request can do is the control plane: tables are recorded whole
(without their items) after it."""
SQS_READS = frozenset(
    {"GetQueueUrl", "GetQueueAttributes", "ListQueues", "ListQueueTags"}
    | {"ListDeadLetterSourceQueues", "ListMessageMoveTasks"}
)
SQS_MESSAGE_WRITES = frozenset(
    {"SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage"}
    | {"DeleteMessageBatch", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"}
    | {"PurgeQueue"}
)
STEPFUNCTIONS_CONTROL_PLANE = frozenset(
    {"CreateStateMachine", "UpdateStateMachine", "DeleteStateMachine"}
    | {"CreateStateMachineAlias", "UpdateStateMachineAlias", "DeleteStateMachineAlias"}
    | {"PublishStateMachineVersion", "DeleteStateMachineVersion"}
    | {"CreateActivity", "DeleteActivity", "TagResource", "UntagResource"}
)
"""Executions are recorded as they start and end; these change the machines themselves."""


class DataDirError(RuntimeError):
    """The data directory cannot be used (taken by another sandbox, or from another format)."""


# --- the directory ------------------------------------------------------------------------------


class DataDir:
    """The files of one durable sandbox, and the lock that keeps a second sandbox out."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_file: io.BufferedRandom | None = None

    @property
    def snapshot(self) -> Path:
        return self.path / SNAPSHOT

    def segment(self, number: int) -> Path:
        return self.path / f"journal-{number:06d}.log"

    def segments(self) -> list[tuple[int, Path]]:
        """The journal segments present, oldest first."""
        found = []
        for path in self.path.glob(JOURNAL_GLOB):
            with contextlib.suppress(ValueError):
                found.append((int(path.stem.split("-", 1)[1]), path))
        return sorted(found)

    def lock(self) -> None:
        """Take the directory (created if missing); raises DataDirError when it is taken."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK, "a+b")  # noqa: SIM115 (held until unlock)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().decode(errors="replace").strip() or "?"
            handle.close()
            raise DataDirError(
                f"{self.path} is in use by another sandbox (pid {holder}): stop it, or set "
                f"PAYFLOW_DATA_DIR to another directory"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()).encode())
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            handle.close()

    def wipe(self) -> list[Path]:
        """Delete the state files (the sandbox must be stopped); returns what was deleted."""
        self.lock()
        try:
            doomed = [p for p in (self.snapshot, *(p for _, p in self.segments())) if p.exists()]
            doomed += list(self.path.glob(f"{SNAPSHOT}.*.tmp"))
            doomed += [p for p in (self.path / RUNNING_FILE,) if p.exists()]
            for path in doomed:
                path.unlink()
            return doomed
        finally:
            self.unlock()


def wipe(path: Path) -> list[Path]:
    """`payflow reset`: delete the state kept in `path`. Raises DataDirError while a sandbox
    uses it."""
    if not Path(path).exists():
        return []
    return DataDir(path).wipe()


# --- pickling moto's objects ---------------------------------------------------------------------


def _fresh_lock(kind: Callable[[], Any]) -> tuple[Callable[[], Any], tuple[()]]:
    return kind, ()


def _sized_dict(values: dict[str, Any]) -> Any:
    """An item's attributes as they were: moto's LimitedSizeDict re-measures the whole item on
    every key set (quadratic, most of a restore's time), and a stored item was measured when
    it was written."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    attributes = LimitedSizeDict.__new__(LimitedSizeDict)
    dict.update(attributes, values)
    return attributes


class _StoredRecord:
    """A stream record as a restore leaves it: its pickle, unpickled when first read.

    Stream records are about half of a large snapshot, and most are never read again (the
    pollers stand at the end): kept as bytes, a restore takes far less time."""

    __slots__ = ("_data", "_record")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._record: dict[str, Any] | None = None

    @property
    def record(self) -> dict[str, Any]:
        if self._record is None:
            self._record = pickle.loads(self._data)
        return self._record

    def to_json(self) -> dict[str, Any]:
        return self.record

    def __reduce__(self) -> tuple[Any, ...]:
        return _StoredRecord, (self._data,)


def _stored_record(record: Any) -> tuple[Any, ...]:
    return _StoredRecord, (pickle.dumps(record.record, protocol=pickle.HIGHEST_PROTOCOL),)


@functools.cache
def _dispatch_table() -> dict[type, Callable[[Any], Any]]:
    """Locks and conditions pickle as new, free ones: a snapshot is taken between requests,
    when none is held by the state being saved. Item attributes skip moto's size check;
    stream records come back as `_StoredRecord`."""
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict
    from moto.dynamodb.models.table import StreamRecord

    table: dict[type, Callable[[Any], Any]] = dict(copyreg.dispatch_table)
    table[LimitedSizeDict] = lambda values: (_sized_dict, (dict(values),))
    table[StreamRecord] = _stored_record
    table[type(threading.Lock())] = lambda _: _fresh_lock(threading.Lock)
    table[type(threading.RLock())] = lambda _: _fresh_lock(threading.RLock)
    table[threading.Condition] = lambda _: _fresh_lock(threading.Condition)
    table[threading.Event] = lambda _: _fresh_lock(threading.Event)
    return table


class _Pickler(pickle.Pickler):
    """moto's backends as they can be restored: locks fresh."""

    def __init__(self, file: io.BytesIO, protocol: int = pickle.HIGHEST_PROTOCOL) -> None:
        super().__init__(file, protocol=protocol)
        self.dispatch_table = _dispatch_table()


class _ExecutionsPickler(_Pickler):
    """Step Functions backends: executions as records (their workers hold threads)."""

    def __init__(self, file: io.BytesIO) -> None:
        from moto.stepfunctions.parser.backend.execution import Execution

        super().__init__(file)
        self._execution = Execution

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, self._execution):
            return _restored_execution, (type(obj), execution_record(obj))
        return NotImplemented


def dumps(value: Any, *, executions: bool = False) -> bytes:
    """Pickle moto state; with `executions`, Step Functions executions become records (a
    per-object hook, kept off the large DynamoDB and SQS states)."""
    buffer = io.BytesIO()
    pickler = _ExecutionsPickler(buffer) if executions else _Pickler(buffer)
    pickler.dump(value)
    return buffer.getvalue()


_EXECUTION_SKIPPED = ("exec_worker", "state_machine", "_cloud_watch_logging_session")


def execution_record(execution: Any) -> dict[str, Any]:
    """What an execution is, without its worker: enough to describe it or to run it again.

    Its history is not kept (it holds every state's input and output: tens of KB per
    payment); a restored finished execution answers GetExecutionHistory with no events.
    """
    record = {k: v for k, v in vars(execution).items() if k not in _EXECUTION_SKIPPED}
    record["_activity_store"] = {}
    return record


class _FinishedWorker:
    """Stands in for the worker of an execution restored as finished: no callbacks, no map
    runs, no history."""

    class _Nothing:
        def notify(self, **_: Any) -> bool:
            return False

        def heartbeat(self, **_: Any) -> bool:
            return False

        def get(self, *_: Any) -> None:
            return None

        def get_all(self) -> list[Any]:
            return []

        def get_event_history(self) -> list[Any]:
            return []

    def __init__(self) -> None:
        nothing = self._Nothing()
        self.env = type(
            "RestoredEnvironment",
            (),
            {
                "callback_pool_manager": nothing,
                "map_run_record_pool_manager": nothing,
                "event_manager": nothing,
            },
        )()

    def stop(self, **_: Any) -> None:
        """A finished execution has nothing to stop."""


def _restored_execution(cls: Any, record: dict[str, Any]) -> Any:
    execution = cls.__new__(cls)
    execution.__dict__.update(record)
    execution.exec_worker = _FinishedWorker()
    execution._cloud_watch_logging_session = None
    # The live state machine is attached once everything is loaded (`_attach_executions`).
    execution.state_machine = None
    return execution


# --- the journal ---------------------------------------------------------------------------------


class Journal:
    """Append-only, framed, fsynced about once a second by a thread of its own.

    `lock` orders the entries: whoever appends holds it for the write, and a snapshot holds
    it while it switches to the next segment.
    """

    def __init__(self, directory: DataDir, segment: int, *, fsync_interval: float) -> None:
        self.directory = directory
        self.lock = threading.RLock()
        self.segment = segment
        self.bytes_written = 0
        self._fd = self._open(segment)
        self._dirty = False
        self._closed = threading.Event()
        self._fsync_interval = fsync_interval
        self._syncer = threading.Thread(target=self._sync_loop, name="journal-fsync", daemon=True)
        self._syncer.start()

    def _open(self, segment: int) -> int:
        return os.open(
            self.directory.segment(segment), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )

    def append(self, entry: tuple[Any, ...]) -> None:
        """Write one entry (in the page cache when this returns: a killed process keeps it)."""
        payload = dumps(entry)
        frame = _FRAME.pack(len(payload), zlib.crc32(payload)) + payload
        with self.lock:
            os.write(self._fd, frame)
            self.bytes_written += len(frame)
            self._dirty = True

    def rotate(self) -> int:
        """Start the next segment (hold `lock`); returns its number."""
        with self.lock:
            os.fsync(self._fd)
            os.close(self._fd)
            self.segment += 1
            self._fd = self._open(self.segment)
            self.bytes_written = 0
            self._dirty = False
            return self.segment

    def sync(self) -> None:
        with self.lock:
            if not self._dirty:
                return
            fd = os.dup(self._fd)
            self._dirty = False
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        self._closed.set()
        self._syncer.join(5)
        with self.lock:
            os.fsync(self._fd)
            os.close(self._fd)

    def _sync_loop(self) -> None:
        while not self._closed.wait(self._fsync_interval):
            try:
                self.sync()
            except OSError:
                logger.exception("could not fsync the journal")


def read_segment(path: Path) -> Iterator[tuple[Any, ...]]:
    """The entries of one segment, up to the first torn or corrupt frame."""
    data = path.read_bytes()
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        yield pickle.loads(payload)
        offset = start + length
    if offset < len(data):
        logger.warning(
            "%s: %d bytes after the last whole entry dropped (a write cut off by a kill)",
            path.name,
            len(data) - offset,
        )


# --- what a request changed --------------------------------------------------------------------


@dataclass
class _TouchedTable:
    table: Any
    keys: set[tuple[Any, Any]] = field(default_factory=set)
    stream_length: int | None = None
    """Records in the table's stream before this request's first write."""


def _backends(service: str) -> Any:
    if service == "dynamodb":
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends
    if service == "sqs":
        from moto.sqs.models import sqs_backends

        return sqs_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends


def _regions(service: str) -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) of every backend of `service` created so far."""
    for account, regional in list(_backends(service).items()):
        for region, backend in list(dict.items(regional)):
            yield account, region, backend


def _message_mark(message: Any) -> tuple[Any, ...]:
    return (
        message.receipt_handle,
        message.approximate_receive_count,
        message.visible_at,
        message.delayed_until,
    )


class Recorder:
    """Journals what requests change and puts it back on start.

    DynamoDB: moto's item writes are hooked (`install`) to note the keys a request touches; its
    end writes those items as they are then (or their absence) and the stream records added.
    SQS: the messages of the queue a request names (and of its dead-letter queue) are compared
    before and after. Step Functions: executions are written as they start and as they end.
    """

    def __init__(self) -> None:
        self.journal: Journal | None = None
        self.checkpoints: dict[tuple[str, str, str], str] = {}
        self._tables: dict[tuple[str, str, str], _TouchedTable] = {}
        self._queues: dict[tuple[str, str, str], tuple[Any, dict[str, tuple[Any, ...]]]] = {}
        self._pending_runs: list[tuple[Any, Any]] = []

    # DynamoDB ----------------------------------------------------------------------------------

    def touch_item(self, table: Any, hash_key: Any, range_key: Any) -> None:
        """Called by the hooks before moto writes an item (DynamoDB requests run one at a time)."""
        if self.journal is None:
            return
        touched = self._tables.get((table.account_id, table.region_name, table.name))
        if touched is None:
            shard = table.stream_shard
            touched = self._tables[(table.account_id, table.region_name, table.name)] = (
                _TouchedTable(table, stream_length=len(shard.items) if shard else None)
            )
        touched.keys.add((hash_key, range_key))

    def dynamodb_done(self, operation: str) -> None:
        """End of a DynamoDB request (its lock still held)."""
        if self.journal is None:
            return
        touched, self._tables = self._tables, {}
        entries: list[tuple[Any, ...]] = []
        if operation not in DYNAMODB_READS and operation not in DYNAMODB_ITEM_WRITES:
            entries.extend(self._dynamodb_tables())
        for (account, region, name), change in touched.items():
            table = change.table
            items = [(h, r, _current_item(table, h, r)) for h, r in change.keys]
            shard = table.stream_shard
            records: list[dict[str, Any]] = []
            first = None
            if shard is not None and change.stream_length is not None:
                records = [record.record for record in shard.items[change.stream_length :]]
                first = shard.starting_sequence_number + change.stream_length
            entries.append(("ddb", account, region, name, items, first, records))
        for entry in entries:
            self.journal.append(entry)

    def _dynamodb_tables(self) -> Iterator[tuple[Any, ...]]:
        """Every table as it is, without items or stream records (they are in the journal)."""
        for account, region, backend in _regions("dynamodb"):
            swapped = []
            for table in backend.tables.values():
                shard = table.stream_shard
                swapped.append((table, table.items, shard, shard.items if shard else None))
                table.items = defaultdict(dict)
                if shard is not None:
                    shard.items = []
            try:
                tables = dumps(dict(backend.tables))
            finally:
                for table, items, shard, records in swapped:
                    table.items = items
                    if shard is not None:
                        shard.items = records
            yield ("ddb_tables", account, region, tables)

    # SQS ---------------------------------------------------------------------------------------

    def sqs_begin(self, operation: str, queue_url: str | None) -> None:
        """Start of an SQS request (its lock held): note the messages it may change."""
        if self.journal is None:
            return
        self._queues = {}
        if operation in SQS_MESSAGE_WRITES and queue_url:
            for key, queue in _queues_at(queue_url):
                self._note_queue(key, queue)
                dead_letters = getattr(queue, "dead_letter_queue", None)
                if dead_letters is not None:
                    self._note_queue((key[0], key[1], dead_letters.name), dead_letters)

    def _note_queue(self, key: tuple[str, str, str], queue: Any) -> None:
        self._queues[key] = (queue, {m.id: _message_mark(m) for m in queue._messages})

    def sqs_done(self, operation: str) -> None:
        """End of an SQS request (its lock still held)."""
        if self.journal is None:
            return
        noted, self._queues = self._queues, {}
        if operation not in SQS_READS and operation not in SQS_MESSAGE_WRITES:
            for account, region, backend in _regions("sqs"):
                self.journal.append(
                    ("sqs_queues", account, region, _queues_without_messages(backend))
                )
        for (account, region, name), (queue, before) in noted.items():
            changed = [m for m in queue._messages if before.get(m.id) != _message_mark(m)]
            present = {m.id for m in queue._messages}
            removed = [message_id for message_id in before if message_id not in present]
            if changed or removed:
                pending = {m.id for m in queue._pending_messages}
                entry = ("sqs", account, region, name, pickle.dumps(changed), removed, pending)
                self.journal.append(entry)

    def sqs_queue_whole(self, queue_url: str) -> None:
        """After a long poll, which ran without the lock: the queue as it is now."""
        if self.journal is None:
            return
        for (account, region, name), queue in _queues_at(queue_url):
            dead_letters = getattr(queue, "dead_letter_queue", None)
            for queue_name, whole in (
                (name, queue),
                (getattr(dead_letters, "name", ""), dead_letters),
            ):
                if whole is None:
                    continue
                messages = pickle.dumps(list(whole._messages))
                pending = {m.id for m in whole._pending_messages}
                self.journal.append(("sqs_all", account, region, queue_name, messages, pending))

    # Step Functions ---------------------------------------------------------------------------

    def execution_changed(self, execution: Any) -> None:
        """An execution started or ended (called from the request or the worker thread)."""
        if self.journal is None:
            return
        entry = (
            "sfn_exec",
            execution.account_id,
            execution.region_name,
            execution.state_machine_arn,
            pickle.dumps((type(execution), execution_record(execution))),
        )
        self.journal.append(entry)

    def stepfunctions_done(self, operation: str) -> None:
        if self.journal is None or operation not in STEPFUNCTIONS_CONTROL_PLANE:
            return
        with self.journal.lock:
            for account, region, backend in _regions("stepfunctions"):
                entry = ("sfn_backend", account, region, dumps(backend, executions=True))
                self.journal.append(entry)

    # poller checkpoints ----------------------------------------------------------------------

    def checkpoint(self, consumer: str, stream_arn: str, shard_id: str, sequence: str) -> None:
        """A stream poller handled everything up to `sequence` (kept with the data it read)."""
        if self.journal is None:
            self.checkpoints[(consumer, stream_arn, shard_id)] = sequence
            return
        with self.journal.lock:
            self.checkpoints[(consumer, stream_arn, shard_id)] = sequence
            self.journal.append(("checkpoint", consumer, stream_arn, shard_id, sequence))

    # the whole state -----------------------------------------------------------------------------

    def capture(self) -> bytes:
        """Everything, pickled (hold the request locks and the journal lock)."""
        for _, _, backend in _regions("sqs"):
            for queue in backend.queues.values():
                # Receipt handles of deleted messages, kept so a second delete passes: after a
                # restart no consumer holds one.
                queue.deleted_messages = set()
        state = {
            service: dumps(
                {
                    account: dict(dict.items(regional))
                    for account, regional in _backends(service).items()
                },
                executions=service == "stepfunctions",
            )
            for service in SERVICES
        }
        return pickle.dumps(
            {"format": FORMAT, "checkpoints": dict(self.checkpoints), **state},
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    def load(self, data: bytes) -> None:
        """Put a captured state back (before any request)."""
        state = pickle.loads(data)
        if state.get("format") != FORMAT:
            raise DataDirError(
                f"the data directory holds state of format {state.get('format')}, this "
                f"sandbox reads {FORMAT}: run `payflow reset`"
            )
        self.checkpoints = dict(state["checkpoints"])
        for service in SERVICES:
            backends = _backends(service)
            for account, regional in pickle.loads(state[service]).items():
                for region, backend in regional.items():
                    backends[account][region] = backend

    def apply(self, entry: tuple[Any, ...]) -> None:
        """Replay one journal entry onto the loaded state."""
        kind = entry[0]
        if kind == "ddb":
            _apply_items(*entry[1:])
        elif kind == "ddb_tables":
            _apply_tables(entry[1], entry[2], pickle.loads(entry[3]))
        elif kind == "sqs":
            _, account, region, name, changed, removed, pending = entry
            _apply_messages(account, region, name, pickle.loads(changed), removed, pending)
        elif kind == "sqs_all":
            _, account, region, name, messages, pending = entry
            queue = _backends("sqs")[account][region].queues.get(name)
            if queue is not None:
                queue._messages = pickle.loads(messages)
                queue._pending_messages = {m for m in queue._messages if m.id in pending}
        elif kind == "sqs_queues":
            _apply_queues(entry[1], entry[2], pickle.loads(entry[3]))
        elif kind == "sfn_exec":
            _, account, region, machine_arn, execution = entry
            cls, record = pickle.loads(execution)
            _apply_execution(account, region, machine_arn, _restored_execution(cls, record))
        elif kind == "sfn_backend":
            _backends("stepfunctions")[entry[1]][entry[2]] = pickle.loads(entry[3])
        elif kind == "checkpoint":
            _, consumer, stream_arn, shard_id, sequence = entry
            self.checkpoints[(consumer, stream_arn, shard_id)] = sequence
        else:
            raise DataDirError(f"unknown journal entry {kind!r}: run `payflow reset`")

    def finish_restore(self, now: datetime.datetime) -> dict[str, int]:
        """After the load and the replay: executions get their machines, streams lose what
        DynamoDB would have dropped, running executions wait for `resume_executions`."""
        counts = {"tables": 0, "items": 0, "queues": 0, "messages": 0, "executions": 0}
        for _, _, backend in _regions("dynamodb"):
            for table in backend.tables.values():
                counts["tables"] += 1
                counts["items"] += len(table)
                self._trim_stream(table, now - datetime.timedelta(seconds=STREAM_RETENTION_SECONDS))
        for _, _, backend in _regions("sqs"):
            for queue in backend.queues.values():
                counts["queues"] += 1
                counts["messages"] += len(queue._messages)
        self._pending_runs = []
        for _, _, backend in _regions("stepfunctions"):
            for machine in backend.state_machines:
                for execution in machine.executions:
                    counts["executions"] += 1
                    if execution.state_machine is None:
                        execution.state_machine = machine
                    if execution.exec_status is None or execution.status == "RUNNING":
                        self._pending_runs.append((machine, execution))
        counts["running"] = len(self._pending_runs)
        return counts

    def _trim_stream(self, table: Any, horizon: datetime.datetime) -> None:
        shard = table.stream_shard
        if shard is None:
            return
        old = 0
        for record in shard.items:
            created = record.record["dynamodb"].get("ApproximateCreationDateTime")
            if not isinstance(created, datetime.datetime):
                break
            if created.tzinfo is None:  # moto's utcnow(): naive UTC
                created = created.replace(tzinfo=datetime.UTC)
            if created >= horizon:
                break
            old += 1
        if not old:
            return
        # Sequence numbers are the position plus the start: moving the start keeps them.
        del shard.items[:old]
        shard.starting_sequence_number += old
        first = shard.starting_sequence_number
        stream_arn = f"{table.table_arn}/stream/{table.latest_stream_label}"
        for key, sequence in list(self.checkpoints.items()):
            if key[1] == stream_arn and int(sequence) < first - 1:
                self.checkpoints[key] = str(first - 1)

    def resume_executions(self) -> int:
        """Run again, under their names and inputs, the executions a stop cut off."""
        runs, self._pending_runs = self._pending_runs, []
        for machine, stale in runs:
            fresh = type(stale)(
                name=stale.name,
                sm_type=stale.sm_type,
                role_arn=stale.role_arn,
                exec_arn=stale.exec_arn,
                account_id=stale.account_id,
                region_name=stale.region_name,
                # As moto's start_execution does: the machine as it is, without its executions.
                state_machine=copy.deepcopy(
                    machine, {id(machine.executions): [], id(machine.backend): machine.backend}
                ),
                start_date=datetime.datetime.now(tz=datetime.UTC),
                cloud_watch_logging_session=None,
                activity_store={},
                input_data=stale.execution_input,
                trace_header=stale.trace_header,
            )
            machine.executions[machine.executions.index(stale)] = fresh
            fresh.start()
        return len(runs)


def _current_item(table: Any, hash_key: Any, range_key: Any) -> Any:
    bucket = table.items.get(hash_key)
    if bucket is None:
        return None
    return bucket.get(range_key) if table.range_key_attr else bucket


def _apply_items(
    account: str,
    region: str,
    name: str,
    items: list[tuple[Any, Any, Any]],
    first: int | None,
    records: list[dict[str, Any]],
) -> None:
    from moto.dynamodb.models.table import StreamRecord

    table = _backends("dynamodb")[account][region].tables.get(name)
    if table is None:
        return
    for hash_key, range_key, item in items:
        if table.range_key_attr:
            if item is None:
                bucket = table.items.get(hash_key)
                if bucket is not None:
                    bucket.pop(range_key, None)
                    if not bucket:
                        del table.items[hash_key]
            else:
                table.items[hash_key][range_key] = item
        elif item is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = item
    shard = table.stream_shard
    if shard is None or first is None or not records:
        return
    position = first - shard.starting_sequence_number
    if position != len(shard.items):
        # Only a bug could bring this; the records keep their own sequence numbers.
        logger.warning("%s: stream records at %d, expected %d", name, position, len(shard.items))
    for record in records:
        restored: Any = StreamRecord.__new__(StreamRecord)
        restored.record = record
        shard.items.append(restored)


def _apply_tables(account: str, region: str, tables: dict[str, Any]) -> None:
    backend = _backends("dynamodb")[account][region]
    for name, table in tables.items():
        old = backend.tables.get(name)
        if old is not None:
            table.items = old.items
            new_shard, old_shard = table.stream_shard, old.stream_shard
            if new_shard is not None and old_shard is not None and new_shard.id == old_shard.id:
                new_shard.items = old_shard.items
                new_shard.starting_sequence_number = old_shard.starting_sequence_number
        backend.tables[name] = table
    for name in [name for name in backend.tables if name not in tables]:
        del backend.tables[name]


def _queues_without_messages(backend: Any) -> bytes:
    swapped = []
    for queue in backend.queues.values():
        swapped.append((queue, queue._messages, queue._pending_messages, queue.deleted_messages))
        queue._messages, queue._pending_messages, queue.deleted_messages = [], set(), set()
    try:
        return dumps(dict(backend.queues))
    finally:
        for queue, messages, pending, deleted in swapped:
            queue._messages, queue._pending_messages, queue.deleted_messages = (
                messages,
                pending,
                deleted,
            )


def _apply_queues(account: str, region: str, queues: dict[str, Any]) -> None:
    backend = _backends("sqs")[account][region]
    for name, queue in queues.items():
        old = backend.queues.get(name)
        if old is not None:
            queue._messages, queue._pending_messages = old._messages, old._pending_messages
        backend.queues[name] = queue
    for name in [name for name in backend.queues if name not in queues]:
        del backend.queues[name]


def _apply_messages(
    account: str, region: str, name: str, changed: list[Any], removed: list[str], pending: set[str]
) -> None:
    queue = _backends("sqs")[account][region].queues.get(name)
    if queue is None:
        return
    gone = set(removed)
    messages = [m for m in queue._messages if m.id not in gone]
    position = {m.id: i for i, m in enumerate(messages)}
    for message in changed:
        if message.id in position:
            messages[position[message.id]] = message
        else:
            position[message.id] = len(messages)
            messages.append(message)
    queue._messages = messages
    queue._pending_messages = {m for m in messages if m.id in pending}


def _apply_execution(account: str, region: str, machine_arn: str, execution: Any) -> None:
    backend = _backends("stepfunctions")[account][region]
    machine = next((m for m in backend.state_machines if m.arn == machine_arn), None)
    if machine is None:
        return
    execution.state_machine = machine
    for index, existing in enumerate(machine.executions):
        if existing.exec_arn == execution.exec_arn:
            machine.executions[index] = execution
            return
    machine.executions.append(execution)


def _queues_at(queue_url: str) -> Iterator[tuple[tuple[str, str, str], Any]]:
    """The queues a QueueUrl can name (``.../<account>/<name>``), in any region."""
    parts = queue_url.rstrip("/").split("/")
    if len(parts) < 2:
        return
    account, name = parts[-2], parts[-1]
    for backend_account, region, backend in _regions("sqs"):
        queue = backend.queues.get(name) if backend_account == account else None
        if queue is not None:
            yield (account, region, name), queue


# --- hooks into moto ---------------------------------------------------------------------------

_RECORDER: Recorder | None = None


def install(recorder: Recorder) -> None:
    """Route moto's item writes and execution starts and ends to `recorder` (once a process)."""
    global _RECORDER
    first = _RECORDER is None
    _RECORDER = recorder
    if not first:
        return
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.stepfunctions.parser.backend.execution import (
        BaseExecutionWorkerCommunication,
        Execution,
    )

    put_item, delete_item = Table.put_item, Table.delete_item
    update_item, terminated, start = (
        DynamoDBBackend.update_item,
        BaseExecutionWorkerCommunication.terminated,
        Execution.start,
    )

    def recorded_put(self: Any, item_attrs: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        with contextlib.suppress(KeyError, TypeError):
            range_key = DynamoType(item_attrs[self.range_key_attr]) if self.range_key_attr else None
            _touch(self, DynamoType(item_attrs[self.hash_key_attr]), range_key)
        return put_item(self, item_attrs, *args, **kwargs)

    def recorded_delete(self: Any, hash_key: Any, range_key: Any) -> Any:
        _touch(self, hash_key, range_key if self.range_key_attr else None)
        return delete_item(self, hash_key, range_key)

    def recorded_update(self: Any, table_name: str, key: dict[str, Any], *a: Any, **k: Any) -> Any:
        with contextlib.suppress(Exception):
            table = self.get_table(table_name)
            hash_key, range_key = self.get_keys_value(table, key)
            _touch(table, hash_key, range_key if table.range_key_attr else None)
        return update_item(self, table_name, key, *a, **k)

    def recorded_terminated(self: Any) -> None:
        terminated(self)
        if _RECORDER is not None:
            _RECORDER.execution_changed(self.execution)

    def recorded_start(self: Any) -> None:
        start(self)
        if _RECORDER is not None:
            _RECORDER.execution_changed(self)

    Table.put_item = recorded_put  # type: ignore[method-assign]
    Table.delete_item = recorded_delete  # type: ignore[method-assign]
    DynamoDBBackend.update_item = recorded_update  # type: ignore[method-assign]
    BaseExecutionWorkerCommunication.terminated = recorded_terminated  # type: ignore[method-assign]
    Execution.start = recorded_start  # type: ignore[method-assign]


def _touch(table: Any, hash_key: Any, range_key: Any) -> None:
    if _RECORDER is not None:
        _RECORDER.touch_item(table, hash_key, range_key)


# --- the whole -----------------------------------------------------------------------------------


@dataclass
class RestoreReport:
    """What a start found in the data directory."""

    seconds: float
    snapshot_bytes: int
    journal_entries: int
    counts: dict[str, int]


class Durability:
    """The data directory of one moto process: restore on start, journal while running,
    snapshot on stop (and when the journal grows long).

    `quiesce` is a context manager that holds every request lock (aws_server.OneAtATime), so a
    snapshot falls between whole requests.
    """

    def __init__(
        self,
        path: Path,
        quiesce: Callable[[], contextlib.AbstractContextManager[None]],
        *,
        fsync_interval: float = FSYNC_INTERVAL_SECONDS,
        compact_after_bytes: int = COMPACT_AFTER_BYTES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = DataDir(path)
        self.recorder = Recorder()
        self._quiesce = quiesce
        self._fsync_interval = fsync_interval
        self._compact_after = compact_after_bytes
        self._clock = clock
        self._compacting = threading.Lock()
        self._base_bytes = 0
        """Size of the last snapshot."""

    def open(self) -> RestoreReport:
        """Lock the directory, load the snapshot, replay the journal, start a new segment."""
        # Imported first (seconds on a busy machine, paid by every start): the figure is the
        # restore's own.
        import moto.dynamodb.models
        import moto.sqs.models
        import moto.stepfunctions.parser.models  # noqa: F401

        started = time.monotonic()
        self.directory.lock()
        for stale in self.directory.path.glob(f"{SNAPSHOT}.*.tmp"):
            stale.unlink()  # a snapshot a kill cut off: the journal holds what it would have
        install(self.recorder)
        snapshot_bytes, first_segment = self._load_snapshot()
        self._base_bytes = snapshot_bytes
        entries = 0
        last = first_segment - 1
        for number, path in self.directory.segments():
            if number < first_segment:
                continue
            for entry in read_segment(path):
                self.recorder.apply(entry)
                entries += 1
            last = number
        counts = self.recorder.finish_restore(
            datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC)
        )
        # A new segment after whatever was replayed: a torn tail stays behind, never extended.
        self.recorder.journal = Journal(
            self.directory, max(last + 1, first_segment), fsync_interval=self._fsync_interval
        )
        return RestoreReport(time.monotonic() - started, snapshot_bytes, entries, counts)

    def _load_snapshot(self) -> tuple[int, int]:
        path = self.directory.snapshot
        if not path.exists():
            return 0, 1
        data = path.read_bytes()
        header, body = data.split(b"\n", 1)
        self.recorder.load(body)
        return len(data), int(header)

    def after_append(self) -> None:
        """Fold the journal into a snapshot once it is long (in a thread: not in a request)."""
        journal = self.recorder.journal
        if journal is None or journal.bytes_written < max(self._compact_after, self._base_bytes):
            return
        if self._compacting.acquire(blocking=False):
            threading.Thread(target=self._compact_in_thread, name="snapshot", daemon=True).start()

    def _compact_in_thread(self) -> None:
        try:
            self.snapshot()
        except Exception:
            logger.exception("snapshot failed; the journal keeps everything")
        finally:
            self._compacting.release()

    def snapshot(self) -> int:
        """Write a snapshot between whole requests; returns its size in bytes."""
        journal = self.recorder.journal
        assert journal is not None, "open() first"
        with self._quiesce(), journal.lock:
            data = self.recorder.capture()
            segment = journal.rotate()
        path = self.directory.snapshot
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(f"{segment}\n".encode())
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        directory = os.open(self.directory.path, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        self._base_bytes = len(data)
        # The snapshot holds everything before `segment`: older segments go.
        for number, old in self.directory.segments():
            if number < segment:
                old.unlink()
        return len(data)

    def close(self) -> None:
        """A graceful stop: a last snapshot, then the directory is free."""
        try:
            if self.recorder.journal is not None:
                self.snapshot()
                self.recorder.journal.close()
        finally:
            self.recorder.journal = None
            self.directory.unlock()
