"""SSRF: which addresses webhooks may reach, and a sender that connects only to the address it
checked. Every test resolves through an injected resolver and connects, if at all, to
127.0.0.1 (or to a fake connector that records the address and opens nothing)."""

from __future__ import annotations

import socket
import ssl
from urllib.parse import urlsplit

import pytest

from chalicelib.domain.addresses import embedded_ipv4, is_global_address, parse_address
from chalicelib.domain.webhooks import check_url
from chalicelib.errors import ParameterInvalid
from chalicelib.webhooks.sender import PinnedSender
from tests.integration.webhook_receiver import receiving

NOT_GLOBAL = [
    "100.64.0.1",  # CGNAT
    "100.100.100.200",  # a cloud metadata address inside CGNAT
    "127.0.0.1",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "0.0.0.0",
    "255.255.255.255",
    "224.0.0.1",
    "240.0.0.1",
    "192.0.0.8",
    "192.0.2.1",
    "198.18.0.1",
    "::",
    "::1",
    "::ffff:169.254.169.254",  # IPv4-mapped
    "::ffff:100.100.100.200",
    "::127.0.0.1",  # IPv4-compatible
    "2002:a9fe:a9fe::",  # 6to4 of 169.254.169.254
    "2002:6464:64c8::1",  # 6to4 of 100.100.100.200
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of the metadata address
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8: still a local translator
    "64:ff9b:1::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "fec0::1",  # site-local
    "fc00::1",
    "fd12:3456::1",
    "fe80::1%eth0",
    "ff02::1",
    "2001:db8::1",
    "100::1",
]
GLOBAL = ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111", "2002:5db8:d822::1"]


@pytest.mark.parametrize("address", NOT_GLOBAL)
def test_addresses_that_are_not_globally_routable_are_refused(address: str) -> None:
    assert not is_global_address(address)
    host = f"[{address.split('%')[0]}]" if ":" in address else address
    with pytest.raises(ParameterInvalid):
        check_url(f"https://{host}/hook", allow_private=False, resolve=lambda h: [])


@pytest.mark.parametrize("address", GLOBAL)
def test_global_addresses_are_accepted(address: str) -> None:
    assert is_global_address(address)


def test_embedded_ipv4_forms_are_all_found() -> None:
    metadata = parse_address("169.254.169.254")
    for form in ("::ffff:169.254.169.254", "2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe"):
        ip = parse_address(form)
        assert metadata in embedded_ipv4(ip), form  # type: ignore[arg-type]


@pytest.mark.parametrize("answer", [["100.100.100.200"], ["93.184.216.34", "10.0.0.1"], []])
def test_names_resolving_anywhere_private_are_refused(answer: list[str]) -> None:
    with pytest.raises(ParameterInvalid):
        check_url("https://hooks.example.com/x", allow_private=False, resolve=lambda h: answer)


def test_unencodable_host_names_are_refused_not_a_crash() -> None:
    def resolve(host: str) -> list[str]:
        raise UnicodeError("label too long")  # what getaddrinfo raises for such a name

    with pytest.raises(ParameterInvalid):
        check_url("https://" + "a" * 64 + ".example/", allow_private=False, resolve=resolve)


class Recorder:
    """A resolver and a connector that record every call; connects only to 127.0.0.1."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.resolved: list[str] = []
        self.connected: list[tuple[str, int]] = []

    def resolve(self, host: str) -> list[str]:
        self.resolved.append(host)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]

    def connect(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.connected.append(address)
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"test connector: not connecting to {address[0]}")
        return socket.create_connection(address, timeout)


def test_the_sandbox_allow_list_still_delivers_to_loopback_through_a_name() -> None:
    with receiving(events=False) as receiver:
        port = urlsplit(receiver.url).port
        fake = Recorder(["127.0.0.1"])
        sender = PinnedSender(2, allow_private=True, resolve=fake.resolve, connect=fake.connect)
        result = sender.post(
            f"http://hooks.example.com:{port}{receiver.path}", b'{"x":1}', {"X-Test": "1"}
        )
        assert result.ok, result
        (received,) = receiver.wait_for(lambda got: len(got) == 1)
        assert received.headers["host"] == f"hooks.example.com:{port}"
        assert received.path == receiver.path and received.body == b'{"x":1}'
        assert fake.resolved == ["hooks.example.com"]


def test_every_checked_address_is_tried_in_turn_and_nothing_else() -> None:
    # Given a name that answers ::1 first (nothing listens there) and then 127.0.0.1
    with receiving(events=False) as receiver:
        port = urlsplit(receiver.url).port
        fake = Recorder(["::1", "127.0.0.1"])
        sender = PinnedSender(2, allow_private=True, resolve=fake.resolve, connect=fake.connect)
        result = sender.post(f"http://localhost:{port}{receiver.path}", b"{}", {})
        # Then the second answer of the one lookup carried the request
        assert result.ok, result
        assert fake.resolved == ["localhost"]
        assert fake.connected == [("::1", port), ("127.0.0.1", port)]


def test_a_name_that_rebinds_after_the_check_reaches_only_the_checked_address() -> None:
    # Given a name that answers a public address first and loopback to any later lookup
    fake = Recorder(["93.184.216.34"], ["127.0.0.1"])
    sender = PinnedSender(2, resolve=fake.resolve, connect=fake.connect)
    result = sender.post("http://rebind.example.com/hook", b"{}", {})
    # Then it was resolved once and the connection went to the address that passed the check
    assert fake.resolved == ["rebind.example.com"]
    assert fake.connected == [("93.184.216.34", 80)]
    assert not result.ok and "ConnectionRefused" in (result.error or "")


@pytest.mark.parametrize(
    ("url", "answer"),
    [
        ("http://metadata.example.com/", ["100.100.100.200"]),
        ("http://mixed.example.com/", ["93.184.216.34", "127.0.0.1"]),
        ("http://[2002:a9fe:a9fe::]/latest", []),
        ("http://127.0.0.1:9/", []),
    ],
)
def test_the_sender_refuses_private_targets_before_connecting(url: str, answer: list[str]) -> None:
    fake = Recorder(answer)
    result = PinnedSender(2, resolve=fake.resolve, connect=fake.connect).post(url, b"{}", {})
    assert not result.ok and "refused by PayFlow's URL policy" in (result.error or "")
    assert fake.connected == []


def test_redirects_are_answers_not_hops() -> None:
    with receiving(default=302, events=False) as receiver:
        fake = Recorder(["127.0.0.1"])
        sender = PinnedSender(2, allow_private=True, resolve=fake.resolve, connect=fake.connect)
        result = sender.post(receiver.url, b"{}", {})
        assert result.status_code == 302 and not result.ok
        assert receiver.count() == 1 and len(fake.connected) == 1


class RecordingTls(ssl.SSLContext):
    """Records the server name TLS would be started with, then fails the handshake."""

    server_names: list[str | None]

    def wrap_socket(self, sock, *args, server_hostname=None, **kwargs):  # type: ignore[no-untyped-def,override]
        self.server_names.append(server_hostname)
        sock.close()
        raise ssl.SSLError("test: no handshake")


def test_https_keeps_the_host_name_for_sni_and_the_certificate_check() -> None:
    with receiving(events=False) as receiver:
        port = urlsplit(receiver.url).port
        tls = RecordingTls(ssl.PROTOCOL_TLS_CLIENT)
        tls.server_names = []
        fake = Recorder(["127.0.0.1"])
        sender = PinnedSender(
            2, allow_private=True, resolve=fake.resolve, connect=fake.connect, tls=tls
        )
        result = sender.post(f"https://hooks.example.com:{port}/x", b"{}", {})
        assert tls.server_names == ["hooks.example.com"]
        assert fake.connected == [("127.0.0.1", port)]
        assert not result.ok and "SSLError" in (result.error or "")
