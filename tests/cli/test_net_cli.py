"""``smimekit send`` and ``smimekit fetch`` end to end against real servers: a signed and encrypted message
is submitted to Postfix (STARTTLS, SASL through Dovecot), delivered to Dovecot over LMTP, fetched over
IMAP and POP3, decrypted and verified; the server's copy stays as it was. Each failure is one line."""

from __future__ import annotations

import imaplib
import json
import smtplib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from smimekit.cli.main import cli
from smimekit.store import open_store
from smimekit.store.api import Trust
from tests.servers import _ports, _system
from tests.servers.dovecot import Dovecot
from tests.servers.postfix import Postfix
from tests.testpki import Identity, make_ca, make_ee

DOMAIN = "example.com"
USERS = ("alice", "bob", "carol", "dave", "erin", "frank")
PASSWORDS = {f"{u}@{DOMAIN}": f"{u}-pw-{uuid.uuid4().hex[:8]}" for u in USERS}
ALICE, BOB, CAROL, DAVE, ERIN, FRANK = (f"{u}@{DOMAIN}" for u in USERS)
STORE_PASSPHRASE = "store passphrase"


@dataclass(frozen=True)
class World:
    dovecot: Dovecot
    postfix: Postfix
    root: Path
    ids: dict[str, Identity]

    def file(self, name: str) -> str:
        return str(self.root / name)

    def pw(self, user: str) -> str:
        path = self.root / f"{user}.pw"
        path.write_text(PASSWORDS[user] + "\n")
        return str(path)

    def send_args(self, user: str = BOB, *, ca: bool = True) -> list[str]:
        args = ["send", "--server", f"{self.postfix.host}:{self.postfix.submit_port}", "--user", user]
        args += ["--password-file", self.pw(user)]
        return args + (["--ca", str(self.postfix.ca_pem)] if ca else [])

    def imap_args(self, user: str, *, ca: bool = True) -> list[str]:
        args = ["fetch", "--imap", f"{self.dovecot.host}:{self.dovecot.imap_port}", "--user", user]
        args += ["--password-file", self.pw(user)]
        return args + (["--ca", str(self.dovecot.ca_pem)] if ca else [])

    def pop3_args(self, user: str) -> list[str]:
        args = ["fetch", "--pop3", f"{self.dovecot.host}:{self.dovecot.pop3_port}", "--user", user]
        return [*args, "--password-file", self.pw(user), "--ca", str(self.dovecot.ca_pem)]

    def keys(self, name: str) -> list[str]:
        return ["--cert", self.file(f"{name}.crt"), "--key", self.file(f"{name}.key")]

    def wait_delivered(self, user: str, count: int) -> list[bytes]:
        def enough() -> list[bytes]:
            messages = self.dovecot.messages_on_disk(user)
            return messages if len(messages) >= count else []

        return self.postfix.wait_for(enough)

    def arrived(self, user: str, subject: str) -> bytes:
        """The message with ``subject`` in ``user``'s mailbox, once Postfix delivered it."""

        def found() -> bytes:
            return next((m for m in self.dovecot.messages_on_disk(user) if subject.encode() in m), b"")

        return self.postfix.wait_for(found)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    for tool in ("postfix", "dovecot"):
        if _system.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    tmp = tmp_path_factory.mktemp("net-cli")
    ca = make_ca("smimekit send/fetch Root")
    ids = {u: make_ee(f"{u}@{DOMAIN}", ca) for u in USERS}
    files = tmp / "pki"
    files.mkdir()
    (files / "ca.pem").write_bytes(ca.cert_pem())
    for name, ident in ids.items():
        ident.write_pem(files, name)
    with (
        Dovecot(tmp, users=PASSWORDS) as dc,
        Postfix(tmp, lmtp=(dc.host, dc.lmtp_port), mailboxes=dc.users, sasl=(dc.host, dc.auth_port)) as pf,
    ):
        yield World(dc, pf, files, ids)


def run(
    args: list[str],
    *,
    code: int = 0,
    env: dict[str, str] | None = None,
    store: Path | None = None,
    input: bytes | None = None,
) -> Result:
    environment = {"SMIMEKIT_STORE": str(store) if store else "/nonexistent/smimekit-test-store.sqlite3"}
    environment.update(env or {})
    result = CliRunner().invoke(cli, args, env=environment, input=input, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    return result


def fails(args: list[str], *, code: int = 2, env: dict[str, str] | None = None) -> str:
    """Run a command that must fail: exit ``code``, one line on stderr; returns the line."""
    result = run(args, code=code, env=env)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smimekit: error: "), lines[0]
    return lines[0]


def _subject() -> str:
    return f"net-cli {uuid.uuid4().hex}"


def _imap_flags(world: World, user: str) -> dict[bytes, set[bytes]]:
    """Message sequence number -> its flags (but \\Recent, which belongs to a session), read with a
    separate read-only session."""
    conn = imaplib.IMAP4_SSL(
        world.dovecot.host, world.dovecot.imap_port, ssl_context=world.dovecot.client_context()
    )
    try:
        conn.login(user, PASSWORDS[user])
        conn.select("INBOX", readonly=True)
        typ, data = conn.fetch("1:*", "(FLAGS)")
        assert typ == "OK"
        lines = [line for line in data if isinstance(line, bytes)]
        return {line.split(b" ")[0]: set(imaplib.ParseFlags(line)) - {b"\\Recent"} for line in lines}
    finally:
        conn.logout()


# ------------------------------------------------------------------------------------------ the whole way


def test_signed_and_encrypted_mail_goes_through_postfix_and_dovecot_and_opens(
    world: World, tmp_path: Path
) -> None:
    subject = _subject()
    sent = run(
        [
            *world.send_args(),
            "--from", f"Bob <{BOB}>", "--to", world.file("alice.crt"), "--bcc", world.file("carol.crt"),
            "--subject", subject, "--text", "Hello Alice, this is signed and encrypted.",
            "--sign", *world.keys("bob"), "--encrypt", "--trust", world.file("ca.pem"),
        ]
    )  # fmt: skip
    assert f"from {BOB} to {ALICE}, {CAROL} via" in sent.stdout
    on_disk = world.arrived(ALICE, subject)
    assert b"application/pkcs7-mime" in on_disk and subject.encode() in on_disk
    assert b"Hello Alice" not in on_disk  # encrypted on the server
    head = on_disk.split(b"\n\n", 1)[0]  # Dovecot stores LF line ends
    assert b"\nBcc:" not in head and CAROL.encode() not in head  # the blind copy stays blind
    assert world.arrived(CAROL, subject)  # ... but carol got it

    flags_before = _imap_flags(world, ALICE)
    maildir = tmp_path / "Maildir"
    doc = json.loads(
        run(
            [*world.imap_args(ALICE), *world.keys("alice"), "--trust", world.file("ca.pem"),
             "--maildir", str(maildir), "--json"]
        ).stdout
    )  # fmt: skip
    assert doc["ok"] is True and len(doc["messages"]) == 1
    message = doc["messages"][0]
    assert message["status"] == "opened"
    report = message["report"]
    assert report["encrypted"] and report["signed"] and report["ok"]
    (signature,) = next(layer for layer in report["layers"] if layer["verification"])["verification"][
        "signatures"
    ]
    assert signature["intact"] and signature["valid"] and signature["trusted"]
    assert signature["signer"]["emails"] == [BOB]
    assert _imap_flags(world, ALICE) == flags_before  # no \Seen: the server's copy is unchanged
    assert all(b"\\Seen" not in flags for flags in flags_before.values())

    (saved,) = sorted((maildir / "new").iterdir())
    assert message["saved"] == str(saved)
    opened = saved.read_bytes()
    assert b"Hello Alice, this is signed and encrypted." in opened
    assert f"Subject: {subject}".encode() in opened and b"pkcs7" not in opened
    assert list((maildir / "tmp").iterdir()) == []

    # the same message over POP3, as text; it stays on the server
    text = run([*world.pop3_args(ALICE), *world.keys("alice"), "--trust", world.file("ca.pem")]).stdout
    assert "Message 1 (UIDL " in text and f"from Bob <{BOB}>: {subject}" in text
    assert "Decrypted" in text and "Trusted:      yes" in text
    assert "1 message: 1 opened, 0 not S/MIME, 0 failed" in text
    assert len(world.dovecot.messages_on_disk(ALICE)) == 1
    assert _imap_flags(world, ALICE) == flags_before


def test_untrusted_signature_fails_the_fetch_with_exit_1(world: World) -> None:
    subject = _subject()
    run([*world.send_args(), "--from", BOB, "--to", DAVE, "--subject", subject, "--text", "hi",
         "--sign", *world.keys("bob")])  # fmt: skip
    world.arrived(DAVE, subject)
    result = run(
        [*world.imap_args(DAVE), "--search", f'SUBJECT "{subject}"'], code=1
    )  # no --trust: the signature is valid but not trusted
    assert "not trusted" in result.stderr and result.stderr.count("\n") == 1
    assert "0 opened, 0 not S/MIME, 1 failed" in result.stdout


def test_mixed_mailbox_reports_every_message_and_exits_1(world: World) -> None:
    user = ERIN
    good = _subject()
    run([*world.send_args(), "--from", BOB, "--to", world.file("erin.crt"), "--subject", good, "--text", "ok",
         "--sign", *world.keys("bob"), "--encrypt", "--trust", world.file("ca.pem")])  # fmt: skip
    run([*world.send_args(), "--from", BOB, "--to", user, "--subject", "plain", "--text", "not S/MIME"])
    # encrypted to someone else: erin's key cannot open it
    run([*world.send_args(), "--from", BOB, "--to", world.file("frank.crt"), "--rcpt", user,
         "--subject", "for frank", "--text", "x", "--encrypt", "--trust", world.file("ca.pem")])  # fmt: skip
    # broken: an S/MIME envelope around garbage, delivered straight to Dovecot
    broken = (
        f"From: {BOB}\r\nTo: {user}\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        'Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nTm90IENNUyBhdCBhbGw=\r\n"
    ).encode()
    with smtplib.LMTP(world.dovecot.host, world.dovecot.lmtp_port) as lmtp:
        lmtp.sendmail(BOB, [user], broken)
    world.wait_delivered(user, 4)
    args = [*world.imap_args(user), *world.keys("erin"), "--trust", world.file("ca.pem")]
    result = run([*args, "--json"], code=1)
    doc = json.loads(result.stdout)
    statuses = sorted(m["status"] for m in doc["messages"])
    assert statuses == ["failed", "failed", "not-smime", "opened"], doc
    errors = " | ".join(m["error"] for m in doc["messages"] if m["status"] == "failed")
    assert "not encrypted for" in errors
    # smime.open itself refuses it as malformed S/MIME: never reported as plain mail
    assert (
        "not valid S/MIME: it is declared application/pkcs7-mime but holds no S/MIME data: its body is not CMS"
        in errors
    )
    assert "2 of 4 messages failed" in result.stderr and result.stderr.count("\n") == 1

    # --delete removes what was handled, and leaves the failures on the server
    assert "2 of 4 messages failed" in run([*args, "--delete"], code=1).stderr
    left = world.dovecot.messages_on_disk(user)
    assert len(left) == 2 and all(b"Subject: broken" in m or b"Subject: for frank" in m for m in left)


def test_mark_seen_and_delete_change_only_what_opened(world: World) -> None:
    user = FRANK
    run([*world.send_args(), "--from", BOB, "--to", user, "--subject", _subject(), "--text", "plain one"])
    world.wait_delivered(user, 1)
    run([*world.imap_args(user), "--mark-seen"])
    assert all(b"\\Seen" in flags for flags in _imap_flags(world, user).values())
    run([*world.pop3_args(user), "--delete"])
    assert world.dovecot.messages_on_disk(user) == []


def test_imap_with_starttls(world: World) -> None:
    subject = _subject()
    run([*world.send_args(), "--from", BOB, "--to", FRANK, "--subject", subject, "--text", "over STARTTLS"])
    world.arrived(FRANK, subject)
    args = world.imap_args(FRANK)
    args[2] = f"{world.dovecot.host}:{world.dovecot.imap_starttls_port}"
    out = run([*args, "--starttls", "--search", f'SUBJECT "{subject}"']).stdout
    assert f"from {BOB}: {subject}" in out and "1 message: 0 opened, 1 not S/MIME, 0 failed" in out


def test_send_with_keys_from_the_store_and_fetch_with_them(world: World, tmp_path: Path) -> None:
    store_path = tmp_path / "store.sqlite3"
    anchor = x509.load_pem_x509_certificate((world.root / "ca.pem").read_bytes())
    with open_store(store_path) as store:
        store.add_certificate(anchor, trust=Trust.EMAIL)
        for name in ("bob", "carol"):
            record = store.add_certificate(world.ids[name].cert)
            store.add_private_key(record.fingerprint, world.ids[name].key, STORE_PASSPHRASE.encode())
    env = {"SMIMEKIT_PASSWORD": STORE_PASSPHRASE}
    subject = _subject()
    run(
        [*world.send_args(), "--from", BOB, "--to", CAROL, "--subject", subject, "--text", "from the store",
         "--sign", "--encrypt"],
        env=env,
        store=store_path,
    )  # fmt: skip
    world.arrived(CAROL, subject)
    doc = json.loads(
        run(
            [*world.imap_args(CAROL), "--search", f'SUBJECT "{subject}"', "--json"], env=env, store=store_path
        ).stdout
    )
    (message,) = doc["messages"]
    assert message["status"] == "opened", message
    assert message["report"]["encrypted"] and message["report"]["signed"]
    # what bob's signature taught is kept in the store, as 'smimekit open' keeps it
    assert world.ids["bob"].cert.fingerprint(hashes.SHA256()).hex() in message["report"]["harvested"]
    with open_store(store_path) as store:
        learned = store.correspondent(BOB)
    assert learned is not None and learned.capabilities


def test_a_ready_message_from_stdin_loses_its_bcc_and_reaches_everyone(world: World) -> None:
    subject = _subject()
    message = (
        f"From: Bob <{BOB}>\r\nTo: {DAVE}\r\nBcc: {FRANK}\r\nSubject: {subject}\r\n"
        "Content-Type: text/plain\r\n\r\nplain text, read from stdin\r\n"
    ).encode()
    args = world.send_args()
    at = args.index("--password-file")
    env = {"SMIMEKIT_SMTP_PASSWORD": PASSWORDS[BOB]}
    run([*args[:at], *args[at + 2 :], "-"], env=env, input=message)
    assert b"Bcc:" in message
    for user in (DAVE, FRANK):
        delivered = world.arrived(user, subject)
        assert b"plain text, read from stdin" in delivered
        assert b"\nBcc:" not in delivered.split(b"\n\n", 1)[0]


# ------------------------------------------------------------------------------------------ failures


def test_implicit_tls_to_a_starttls_port_is_one_line(world: World) -> None:
    line = fails([*world.send_args(), "--tls", "--from", BOB, "--to", ALICE, "--subject", "x", "--text", "x"])
    assert "TLS with" in line and "failed while connecting" in line


def test_wrong_smtp_password_is_one_line(world: World) -> None:
    wrong = world.root / "wrong.pw"
    wrong.write_text("not the password\n")
    args = world.send_args()
    args[args.index("--password-file") + 1] = str(wrong)
    line = fails([*args, "--from", BOB, "--to", ALICE, "--subject", "x", "--text", "x"])
    assert "refused the user name or password" in line and "535" in line


def test_wrong_imap_and_pop3_passwords_are_one_line(world: World) -> None:
    env = {"SMIMEKIT_MAIL_PASSWORD": "wrong"}
    for args in (world.imap_args(ALICE), world.pop3_args(ALICE)):
        at = args.index("--password-file")
        line = fails(args[:at] + args[at + 2 :], env=env)
        assert "refused the user name or password" in line


def test_server_certificate_without_ca_is_one_line(world: World) -> None:
    line = fails([*world.send_args(ca=False), "--from", BOB, "--to", ALICE, "--subject", "x", "--text", "x"])
    assert "did not verify" in line and "--ca" in line
    assert "did not verify" in fails(world.imap_args(ALICE, ca=False))


def test_unsafe_no_verify_is_reported(world: World) -> None:
    args = [*world.imap_args(FRANK, ca=False), "--unsafe-no-verify"]
    result = run(args)
    assert "NOT verified (--unsafe-no-verify)" in result.stderr


def test_server_down_is_one_line(world: World) -> None:
    port = _ports.free_port()
    line = fails(["send", "--server", f"127.0.0.1:{port}", "--from", BOB, "--to", ALICE, "--subject", "x",
                  "--text", "x"])  # fmt: skip
    assert f"127.0.0.1:{port} refused the connection" in line
    line = fails(
        ["fetch", "--imap", f"127.0.0.1:{port}", "--user", ALICE], env={"SMIMEKIT_MAIL_PASSWORD": "x"}
    )
    assert "refused the connection" in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "--server", "h", "--from", "a@b.c", "--to", "x@y.z", "--subject", "s"], "exactly one of --text"),
        (["send", "--server", "h", "--to", "x@y.z", "--text", "t"], "give --from, --to and --subject"),
        (["send", "--server", "h:99999", "--from", "a@b.c", "--to", "x@y.z", "--subject", "s", "--text", "t"], "port"),
        (["send", "--server", "h", "--from", "a@b.c", "--to", "x@y.z", "--subject", "s", "--text", "t", "--sign"],
         "no certificate store"),
        (["send", "--server", "h", "--from", "a@b.c", "--to", "x@y.z", "--subject", "s", "--text", "t", "--encrypt"],
         "no certificate store"),
        (["send", "--server", "h", "--password-file", "-", "--from", "a@b.c", "--to", "x@y.z", "--subject", "s",
          "--text", "t"], "give --user too"),
        (["fetch", "--user", "u"], "exactly one of --imap"),
        (["fetch", "--imap", "h", "--pop3", "h", "--user", "u"], "exactly one of --imap"),
        (["fetch", "--pop3", "h", "--user", "u", "--uid", "1"], "are for IMAP"),
        (["fetch", "--imap", "h", "--user", "u", "--uid", "1:x"], "not a UID set"),
        (["fetch", "--imap", "h"], "--user"),
        (["fetch", "--imap", "h", "--user", "u"], "SMIMEKIT_MAIL_PASSWORD"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    assert message in fails(args)
