"""The embedded AWS server: ports, moto configuration, shared backends."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest

from payflow.sandbox.aws import EmbeddedAws, PortInUseError


def test_port_zero_picks_a_free_port_and_sets_moto_port(aws: EmbeddedAws) -> None:
    assert aws.port > 0
    assert aws.endpoint_url == f"http://127.0.0.1:{aws.port}"
    assert os.environ["MOTO_PORT"] == str(aws.port)


def test_state_machine_execution_is_switched_on(aws: EmbeddedAws) -> None:
    # GET /moto-api/config does not report the stepfunctions section: read moto's global.
    from moto.core.config import default_user_config

    assert default_user_config["stepfunctions"]["execute_state_machine"] is True


def test_a_taken_port_raises_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(PortInUseError, match=f"port {port} .*is in use.*PAYFLOW_AWS_PORT"):
            EmbeddedAws(port=port).start()


def test_two_servers_in_one_process_share_moto_backends(
    aws: EmbeddedAws, unique: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second server rewrites the process-wide MOTO_PORT: restore it afterwards.
    monkeypatch.setenv("MOTO_PORT", os.environ["MOTO_PORT"])
    name = unique("shared")
    aws.client("sqs").create_queue(QueueName=name)

    with EmbeddedAws(port=0) as other:
        urls = other.client("sqs").list_queues(QueueNamePrefix=name).get("QueueUrls", [])

    assert [url.rsplit("/", 1)[-1] for url in urls] == [name]


def test_stop_frees_the_port(aws: EmbeddedAws, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOTO_PORT", os.environ["MOTO_PORT"])
    server = EmbeddedAws(port=0).start()

    server.stop()

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", server.port))
