"""The pieces of durable state (payflow/sandbox/persistence.py) one at a time: the journal's
framing, the directory lock, `payflow reset`, executions cut off by a stop, the moto pin."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from payflow.cli import main as cli
from payflow.sandbox.aws import EmbeddedAws, EmbeddedAwsError
from payflow.sandbox.moto_version import MOTO_VERSION, MotoVersionError, check_moto_version
from payflow.sandbox.persistence import (
    DEFAULT_DATA_DIR,
    DataDir,
    Durability,
    Journal,
    read_segment,
    wipe,
)
from payflow.sandbox.runtime import SandboxConfig, data_dir_from_environ

ROOT = Path(__file__).resolve().parents[2]


def test_a_torn_last_entry_is_dropped_and_the_whole_ones_kept(tmp_path: Path) -> None:
    # Given a journal with three entries, the last one cut short as by a kill mid-write
    directory = DataDir(tmp_path)
    journal = Journal(directory, 1, fsync_interval=60)
    for number in range(3):
        journal.append(("checkpoint", "relay", "arn", "shard", str(number)))
    journal.close()
    segment = directory.segment(1)
    segment.write_bytes(segment.read_bytes()[:-5])

    # When it is read back
    entries = list(read_segment(segment))

    # Then the two whole entries come back, in order, and nothing of the third
    assert [entry[-1] for entry in entries] == ["0", "1"]


def test_a_corrupt_entry_ends_the_replay_there(tmp_path: Path) -> None:
    # Given a journal whose second entry has a flipped byte
    directory = DataDir(tmp_path)
    journal = Journal(directory, 1, fsync_interval=60)
    for number in range(3):
        journal.append(("checkpoint", "relay", "arn", "shard", str(number)))
    journal.close()
    data = bytearray(directory.segment(1).read_bytes())
    first = len(data) // 3
    data[first + 12] ^= 0xFF
    directory.segment(1).write_bytes(bytes(data))

    # Then only the entry before it is replayed (a later one cannot follow a missing one)
    assert [entry[-1] for entry in read_segment(directory.segment(1))] == ["0"]


def test_reset_wipes_the_state_and_refuses_while_a_sandbox_holds_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a data directory with a snapshot and a journal, held by a running sandbox
    (tmp_path / "snapshot.pickle").write_bytes(b"1\n")
    (tmp_path / "journal-000001.log").write_bytes(b"")
    holder = DataDir(tmp_path)
    holder.lock()

    # When `payflow reset` runs, then it refuses in one line and deletes nothing
    assert cli(["reset", "--data-dir", str(tmp_path)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "in use by another sandbox" in error
    assert (tmp_path / "snapshot.pickle").exists()

    # And once the sandbox is gone, it deletes the state files
    holder.unlock()
    assert cli(["reset", "--data-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "snapshot.pickle").exists()
    assert not list(tmp_path.glob("journal-*"))
    assert wipe(tmp_path / "never-made") == []


def test_a_second_embedded_aws_on_a_taken_directory_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    # Given a data directory another sandbox holds
    holder = DataDir(tmp_path / "data")
    holder.lock()
    try:
        # When an embedded AWS starts on it, then it says why in one line
        with pytest.raises(EmbeddedAwsError) as refused:
            EmbeddedAws(port=0, data_dir=tmp_path / "data").start()
    finally:
        holder.unlock()
    assert "in use by another sandbox" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_an_execution_cut_off_by_a_stop_runs_again_under_its_name(tmp_path: Path) -> None:
    # Given a durable embedded AWS running an execution that waits two seconds
    definition = json.dumps(
        {
            "StartAt": "Wait",
            "States": {
                "Wait": {"Type": "Wait", "Seconds": 2, "Next": "Done"},
                "Done": {"Type": "Pass", "Result": {"done": True}, "End": True},
            },
        }
    )
    with EmbeddedAws(port=0, data_dir=tmp_path / "data") as aws:
        sfn = aws.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="cut-off", definition=definition, roleArn="arn:aws:iam::000000000000:role/x"
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="pi_1-attempt-1")
        # When the embedded AWS stops while it waits
    with EmbeddedAws(port=0, data_dir=tmp_path / "data") as aws:
        sfn = aws.client("stepfunctions")
        arn = execution["executionArn"]

        # Then after the restart it is still the one execution of that name, not yet run
        # again until the sandbox says its handlers can answer
        assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
        assert aws.restored()["counts"]["running"] == 1
        assert aws.resume_executions() == 1

        # And once resumed it runs to its end under the same name, a start with the same
        # name and input joining it
        again = sfn.start_execution(stateMachineArn=machine, name="pi_1-attempt-1")
        assert again["executionArn"] == arn
        deadline = time.monotonic() + 20
        while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        described = sfn.describe_execution(executionArn=arn)
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {"done": True}
        listed = sfn.list_executions(stateMachineArn=machine)["executions"]
        assert [e["executionArn"] for e in listed] == [arn]


def test_moto_is_pinned_to_the_version_the_sandbox_checks() -> None:
    pins = re.findall(r'"moto\[[^\]]*\]==([0-9.]+)"', (ROOT / "pyproject.toml").read_text())
    assert pins == [MOTO_VERSION]
    check_moto_version()


def test_another_moto_version_is_refused_in_one_line() -> None:
    with pytest.raises(MotoVersionError) as refused:
        check_moto_version("5.3.0")
    message = str(refused.value)
    assert "moto 5.3.0 is installed" in message and MOTO_VERSION in message
    assert "\n" not in message


def test_unpatched_moto_still_has_the_bugs_the_sandbox_patches() -> None:
    """When this fails, moto fixed one: docs/moto-patches.md says which patch can go."""
    found = subprocess.run(
        [sys.executable, "-m", "tests.sandbox.moto_upstream"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    bugs = json.loads(found.stdout)
    assert {name: bug["present"] for name, bug in bugs.items()} == {
        "transact_write_cancel_breaks_streams": True
    }


def test_a_long_journal_is_folded_into_a_snapshot_and_both_restore(tmp_path: Path) -> None:
    # Given a durable state whose journal is folded in as soon as it holds anything
    durability = Durability(tmp_path, contextlib.nullcontext, compact_after_bytes=1)
    durability.open()
    durability.recorder.checkpoint("relay", "arn:stream", "shard-1", "100")

    # When a request ends, then a snapshot is written in the background and the journal
    # starts over in a new segment
    durability.after_append()
    deadline = time.monotonic() + 10
    while not (tmp_path / "snapshot.pickle").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    durability._compacting.acquire(timeout=10)
    durability._compacting.release()
    assert [number for number, _ in durability.directory.segments()] == [2]

    # And what comes after the snapshot is journaled, and a start finds both
    durability.recorder.checkpoint("relay", "arn:stream", "shard-2", "7")
    durability.recorder.journal.close()  # a kill: no last snapshot
    durability.recorder.journal = None
    durability.directory.unlock()
    restored = Durability(tmp_path, contextlib.nullcontext)
    report = restored.open()
    try:
        assert restored.recorder.checkpoints == {
            ("relay", "arn:stream", "shard-1"): "100",
            ("relay", "arn:stream", "shard-2"): "7",
        }
        assert report.journal_entries == 1
    finally:
        restored.close()


def test_the_data_directory_comes_from_the_environment() -> None:
    assert data_dir_from_environ({}) == DEFAULT_DATA_DIR
    assert data_dir_from_environ({"PAYFLOW_DATA_DIR": "/tmp/x"}) == Path("/tmp/x")
    assert data_dir_from_environ({"PAYFLOW_DATA_DIR": "/tmp/x", "PAYFLOW_EPHEMERAL": "1"}) is None
    assert SandboxConfig().data_dir is None  # built in code (the tests' sandbox): memory only
    assert SandboxConfig.from_environ({"PAYFLOW_EPHEMERAL": "true"}).data_dir is None
