"""Two gateway nodes sharing ONE PostgreSQL store, as the PostgreSQL backend is there for: what one node
or an operator puts into the store is what the other node works with, without a restart.

Both nodes run in this process (a :class:`GatewayThread` each, with its own next hop) against a private
PostgreSQL server started for the module; every test has a database of its own holding the test root
(trusted for e-mail) and Alice's and Dave's certificates and keys. Bob's and Carol's certificates are not
in it at first.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from smimekit import mime, smime
from smimekit.cli.main import cli
from smimekit.store import Store, Trust, open_store
from tests.gateway._support import (
    NOW,
    PASSPHRASE,
    GatewayThread,
    Sink,
    message,
    pki,
    settings,
    signed_by,
)
from tests.pgserver import PgServer, start_postgres

ALICE = "alice@example.org"
BOB, CAROL = "bob@partner.example", "carol@partner.example"


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PgServer]:
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture
def url(pg_server: PgServer) -> str:
    """A new database holding the root (trusted) and Alice's and Dave's certificates and keys."""
    location = pg_server.create_database("nodes")
    p = pki()
    with open_store(location) as store:
        store.add_certificate(p.root.cert, trust=Trust.EMAIL)
        for ident in (p.alice, p.dave):
            record = store.add_certificate(ident.cert)
            store.add_private_key(record.fingerprint, ident.key, PASSPHRASE)
    return location


class Node:
    """One gateway node: its own next hop and spool, the shared store."""

    def __init__(self, url: str, spool: Path) -> None:
        self.sink = Sink().__enter__()
        # the store location is a URL; GatewayThread hands it to open_store as it is
        self.gateway = GatewayThread(settings(self.sink.port), url, spool).__enter__()  # type: ignore[arg-type]

    def send(self, sender: str, recipient: str, data: bytes) -> bytes:
        """Submit one message; returns what the next hop got for ``recipient``."""
        before = len(self.sink.messages)
        code, text = self.gateway.send(sender, [recipient], data)
        assert code == 250, text
        assert len(self.sink.messages) == before + 1
        return self.sink.messages[-1].data

    def open_store(self) -> Store:
        """A store connection opened the way this node opens one for each message."""
        opener: Callable[[], Store] = self.gateway.gateway.processor._open_store
        return opener()

    def actions(self) -> list[list[str]]:
        return [json.loads(x)["action"] for x in self.gateway.log_lines if '"sender"' in x]

    def close(self) -> None:
        self.gateway.stop()
        self.sink.__exit__(None, None, None)


@pytest.fixture
def nodes(url: str, tmp_path: Path) -> Iterator[tuple[Node, Node]]:
    a = Node(url, tmp_path / "spool-a")
    try:
        b = Node(url, tmp_path / "spool-b")
    except BaseException:
        a.close()
        raise
    try:
        yield a, b
    finally:
        b.close()
        a.close()


def _content_type(data: bytes) -> str:
    with mime.parse(data) as m:
        return m.content_type


def _opened_by(data: bytes, ident: object) -> smime.OpenResult:
    keys = [(ident.cert, ident.key)]  # type: ignore[attr-defined]
    return smime.open(mime.parse(data), now=NOW, keys=keys, anchors=[pki().root.cert])


def test_a_certificate_imported_once_is_used_by_both_nodes(
    nodes: tuple[Node, Node], url: str, tmp_path: Path
) -> None:
    a, b = nodes
    # Bob unknown: both nodes sign only (opportunistic encryption)
    for node in (a, b):
        assert _content_type(node.send(ALICE, BOB, message(subject="before"))) == "multipart/signed"
    # the operator imports Bob's certificate once, on whichever node, with the CLI
    bob_crt = tmp_path / "bob.crt"
    bob_crt.write_bytes(pki().bob.cert_pem())
    result = CliRunner().invoke(cli, ["--store", url, "keys", "import", str(bob_crt)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # both nodes, running all along, encrypt to him at once
    for node, subject in ((a, "after via A"), (b, "after via B")):
        data = node.send(ALICE, BOB, message(subject=subject))
        assert _content_type(data) == "application/pkcs7-mime"
        opened = _opened_by(data, pki().bob)
        assert opened.encrypted and opened.signed and opened.ok
        assert f"Subject: {subject}".encode() in opened.inner.to_bytes()
    assert a.actions() == b.actions() == [["sign"], ["sign+encrypt"]]


def test_a_signer_harvested_by_one_node_is_encrypted_to_by_the_other(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    # node B does not know Carol: signed only
    assert _content_type(b.send(ALICE, CAROL, message(to=CAROL, subject="hello"))) == "multipart/signed"
    # Carol writes to Alice through node A, which verifies her signature and keeps her certificate
    delivered = a.send(CAROL, ALICE, signed_by(pki().carol, message(CAROL, ALICE)))
    with mime.parse(delivered) as m:
        (result,) = m.headers.get_all("Authentication-Results")
    assert result.startswith("gw.example.org; smime=pass") and f"body.smime-identifier={CAROL}" in result
    # node B now encrypts Alice's answer to Carol, with the cipher her signature announced
    data = b.send(ALICE, CAROL, message(to=CAROL, subject="Re: hello"))
    assert _content_type(data) == "application/pkcs7-mime"
    opened = _opened_by(data, pki().carol)
    assert opened.encrypted and opened.ok and b"Subject: Re: hello" in opened.inner.to_bytes()
    assert b.actions() == [["sign"], ["sign+encrypt"]]


def test_crl_numbers_allocated_from_both_nodes_at_once_never_repeat(
    nodes: tuple[Node, Node], url: str, tmp_path: Path
) -> None:
    """Each node's own connections to the store allocate CRL numbers of the same CA at the same time:
    every number is handed out once, and the CLI carries on after the last one."""
    password = tmp_path / "password"
    password.write_bytes(PASSPHRASE + b"\n")
    result = CliRunner().invoke(
        cli,
        [
            "--store",
            url,
            "ca",
            "init",
            "--name",
            "Shared CA",
            "--no-default",
            "--password-file",
            str(password),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    with open_store(url) as store:
        shared = store.find_ca("Shared CA")
        assert shared is not None
    per_worker, workers = 25, 4  # two workers per node
    start = threading.Barrier(workers)
    numbers: list[list[int]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def allocate(slot: int) -> None:
        node = nodes[slot % 2]
        try:
            with node.open_store() as store:  # a connection of the node's own, as it opens for a message
                start.wait(timeout=30)
                numbers[slot].extend(store.next_crl_number(shared.fingerprint) for _ in range(per_worker))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=allocate, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    everything = [n for chunk in numbers for n in chunk]
    assert sorted(everything) == list(range(1, per_worker * workers + 1))  # none repeated, none skipped
    assert all(chunk == sorted(chunk) for chunk in numbers)  # each worker's numbers only grow
    crl = tmp_path / "shared.crl"
    result = CliRunner().invoke(
        cli,
        ["--store", url, "ca", "crl", "--ca", "Shared CA", "-o", str(crl), "--password-file", str(password)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"CRL number {per_worker * workers + 1}")
