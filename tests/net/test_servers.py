"""The real-server harness works: mail submitted to Postfix goes through a content filter into Dovecot.

One Dovecot, one pass-through filter, one SMTP sink and one Postfix serve the whole module; the tests
that need a server of their own (start/stop, SASL) start it next to the shared ones, which also shows
that several instances run at once.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import _proc, need
from tests.servers.dovecot import Dovecot
from tests.servers.passthrough import PassThroughFilter
from tests.servers.postfix import Postfix
from tests.servers.sink import SmtpSink

ALICE, ALICE_PW = "alice@example.com", "alice-secret"
CAROL, CAROL_PW = "carol@example.com", "carol-secret"


@dataclass(frozen=True)
class Mail:
    dovecot: Dovecot
    filter: PassThroughFilter
    sink: SmtpSink
    postfix: Postfix


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mail]:
    need("postfix", "dovecot", "postqueue")
    tmp = tmp_path_factory.mktemp("mail")
    with (
        Dovecot(tmp, users={ALICE: ALICE_PW, CAROL: CAROL_PW}) as dc,
        PassThroughFilter() as flt,
        SmtpSink() as sink,
        Postfix(
            tmp,
            lmtp=(dc.host, dc.lmtp_port),
            content_filter=(flt.host, flt.port),
            mailboxes=dc.users,
            relayhost=(sink.host, sink.port),
        ) as pf,
    ):
        flt.reinject_to = (pf.host, pf.reinject_port)
        yield Mail(dc, flt, sink, pf)


def _message(subject: str, *, to: str = ALICE, body: str = "Hello from the harness test.") -> bytes:
    return (
        f"From: Bob <bob@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@example.org>\r\n\r\n{body}\r\n"
    ).encode()


def _subject() -> str:
    return f"harness {uuid.uuid4().hex}"


def _submit(pf: Postfix, message: bytes, to: str = ALICE) -> None:
    pf.submit(message, sender="bob@example.org", recipients=[to])


def _on_disk(dc: Dovecot, user: str, subject: str) -> bytes | None:
    for m in dc.messages_on_disk(user):
        if f"Subject: {subject}".encode() in m:
            return m
    return None


def test_submitted_mail_passes_the_filter_and_lands_in_the_maildir(mail: Mail) -> None:
    subject = _subject()
    before = mail.filter.count
    _submit(mail.postfix, _message(subject, body="line one\r\n.leading dot\r\nline three"))
    stored = mail.postfix.wait_for(lambda: _on_disk(mail.dovecot, ALICE, subject))
    # the body arrives unchanged (dot-stuffing undone at every hop); Dovecot stores LF line ends
    assert b"\nline one\n.leading dot\nline three\n" in stored
    assert b"Delivered-To: alice@example.com" in stored
    assert mail.filter.count == before + 1  # it went through the content filter, once
    assert mail.postfix.log_text().count("relay=127.0.0.1[127.0.0.1]:" + str(mail.filter.port)) >= 1
    mail.postfix.wait_queue_empty()


def test_delivered_mail_is_read_over_imaps_and_pop3s(mail: Mail) -> None:
    subject = _subject()
    _submit(mail.postfix, _message(subject, to=CAROL), to=CAROL)
    mail.postfix.wait_for(lambda: _on_disk(mail.dovecot, CAROL, subject))

    imap = imaplib.IMAP4_SSL(
        mail.dovecot.host, mail.dovecot.imap_port, ssl_context=mail.dovecot.client_context()
    )
    try:
        imap.login(CAROL, CAROL_PW)
        imap.select("INBOX", readonly=True)
        typ, data = imap.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK" and len(data[0].split()) == 1
        typ, fetched = imap.fetch(data[0].split()[0], "(BODY.PEEK[])")
        raw = fetched[0][1]
        assert isinstance(raw, bytes) and f"Subject: {subject}\r\n".encode() in raw
        assert raw.endswith(b"\r\n\r\nHello from the harness test.\r\n")
    finally:
        imap.logout()

    pop = poplib.POP3_SSL(mail.dovecot.host, mail.dovecot.pop3_port, context=mail.dovecot.client_context())
    try:
        pop.user(CAROL)
        pop.pass_(CAROL_PW)
        count, _size = pop.stat()
        texts = [b"\r\n".join(pop.retr(i + 1)[1]) for i in range(count)]
        assert sum(f"Subject: {subject}".encode() in t for t in texts) == 1
    finally:
        pop.quit()


def test_lmtp_delivers_directly_and_refuses_unknown_users(mail: Mail) -> None:
    subject = _subject()
    with smtplib.LMTP(mail.dovecot.host, mail.dovecot.lmtp_port, timeout=30) as lmtp:
        assert lmtp.sendmail("bob@example.org", [ALICE], _message(subject)) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            lmtp.sendmail("bob@example.org", ["nobody@example.com"], _message("lost"))
    assert refused.value.recipients["nobody@example.com"][0] == 550
    assert _on_disk(mail.dovecot, ALICE, subject) is not None


class _IMAP4FromOtherLoopback(imaplib.IMAP4):
    """IMAP from 127.0.0.2: Dovecot counts a connection whose two ends share an address as secured."""

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return socket.create_connection((self.host, self.port), timeout, source_address=("127.0.0.2", 0))


def test_tls_is_real_and_plaintext_login_needs_it(mail: Mail) -> None:
    dc = mail.dovecot
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(dc.host, dc.imap_port, ssl_context=ssl.create_default_context())
    imap = _IMAP4FromOtherLoopback(dc.host, dc.imap_starttls_port)
    try:
        assert "LOGINDISABLED" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(ALICE, ALICE_PW)
        imap.starttls(ssl_context=dc.client_context())
        with pytest.raises(imaplib.IMAP4.error):
            imap.login(ALICE, "wrong password")
        assert imap.login(ALICE, ALICE_PW)[0] == "OK"
    finally:
        imap.logout()


def test_other_domains_are_relayed_to_the_relay_host(mail: Mail) -> None:
    subject = _subject()
    _submit(mail.postfix, _message(subject, to="dave@example.net"), to="dave@example.net")
    got = mail.sink.wait_for_message(lambda m: f"Subject: {subject}".encode() in m.data)
    assert got.rcpt_tos == ("dave@example.net",)
    assert got.mail_from == "bob@example.org"


def test_unknown_mailbox_of_a_virtual_domain_is_refused_at_submission(mail: Mail) -> None:
    with (
        smtplib.SMTP(mail.postfix.host, mail.postfix.submit_port, timeout=30) as s,
        pytest.raises(smtplib.SMTPRecipientsRefused) as refused,
    ):
        s.sendmail("bob@example.org", ["nobody@example.com"], _message("lost"))
    assert refused.value.recipients["nobody@example.com"][0] == 550


def test_mail_waits_in_the_queue_while_the_filter_fails_and_flush_delivers_it(mail: Mail) -> None:
    subject = _subject()
    next_hop = mail.filter.reinject_to
    mail.filter.reinject_to = None  # the filter now answers 451
    try:
        logged = len(mail.postfix.log_text())
        _submit(mail.postfix, _message(subject))
        mail.postfix.wait_for(lambda: "status=deferred" in mail.postfix.log_text()[logged:])
        queued = mail.postfix.queue()
        assert len(queued) == 1 and queued[0]["recipients"][0]["address"] == ALICE  # type: ignore[index]
        assert _on_disk(mail.dovecot, ALICE, subject) is None
    finally:
        mail.filter.reinject_to = next_hop
    mail.postfix.flush()
    mail.postfix.wait_for(lambda: _on_disk(mail.dovecot, ALICE, subject))
    mail.postfix.wait_queue_empty()


def test_implicit_tls_submission_port(mail: Mail) -> None:
    subject = _subject()
    before = mail.filter.count
    context = ssl.create_default_context(cafile=str(mail.postfix.ca_pem))
    with smtplib.SMTP_SSL(mail.postfix.host, mail.postfix.smtps_port, context=context, timeout=30) as s:
        s.sendmail("bob@example.org", [ALICE], _message(subject))
    stored = mail.dovecot.wait_for_message(ALICE, f"Subject: {subject}".encode())
    assert b"with ESMTPS id" in stored  # Postfix recorded the TLS session in its Received header
    assert mail.filter.count == before + 1
    with pytest.raises(ssl.SSLCertVerificationError):
        smtplib.SMTP_SSL(mail.postfix.host, mail.postfix.smtps_port, context=ssl.create_default_context())


def test_a_second_postfix_with_sasl_runs_alongside_and_stops_completely(mail: Mail, tmp_path: Path) -> None:
    dc = mail.dovecot
    with Postfix(tmp_path, relayhost=(mail.sink.host, mail.sink.port), sasl=(dc.host, dc.auth_port)) as pf:
        assert {pf.submit_port, pf.reinject_port}.isdisjoint(
            {mail.postfix.submit_port, mail.postfix.reinject_port}
        )
        master = pf.master_pid
        assert master is not None and master != mail.postfix.master_pid
        run = pf.run
        subject = _subject()
        with smtplib.SMTP(pf.host, pf.submit_port, timeout=30) as s:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                s.sendmail("bob@example.org", ["erin@example.net"], _message(subject))  # no AUTH yet
            s.starttls(context=ssl.create_default_context(cafile=str(pf.ca_pem)))
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login(ALICE, "wrong password")
            s.login(ALICE, ALICE_PW)
            s.sendmail("bob@example.org", ["erin@example.net"], _message(subject))
        mail.sink.wait_for_message(lambda m: f"Subject: {subject}".encode() in m.data)
    assert not _proc.is_running(master)
    assert _proc.group_members(master) == []
    assert run is not None and not run.exists()
    assert mail.postfix.queue_is_empty()  # the shared instance was left alone


def test_dovecot_stops_and_is_reaped(tmp_path: Path) -> None:
    need("dovecot")
    dc = Dovecot(tmp_path, users={ALICE: ALICE_PW})
    with dc:
        assert dc.running
        port = dc.imap_port
        proc = dc._proc
        assert proc is not None
    assert proc.returncode is not None  # reaped
    assert _proc.group_members(proc.pid) == []
    with pytest.raises(OSError):
        imaplib.IMAP4_SSL(dc.host, port, ssl_context=dc.client_context(), timeout=2)


def test_the_pass_through_filter_changes_no_byte_and_passes_refusals_back() -> None:
    message = (
        b"From: a@example.org\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\n"
        b".leading dot\r\n..two dots\r\n8-bit: caf\xc3\xa9\r\n" + b"x" * 990 + b"\r\n\r\n"
    )
    with SmtpSink() as sink, PassThroughFilter() as flt:
        flt.reinject_to = (sink.host, sink.port)
        with smtplib.SMTP(flt.host, flt.port, timeout=30) as s:
            s.sendmail(
                "a@example.org", ["b@example.net", "c@example.net"], message, mail_options=["BODY=8BITMIME"]
            )
        got = sink.wait_for_message()
        assert got.data == message
        assert got.rcpt_tos == ("b@example.net", "c@example.net") and got.mail_from == "a@example.org"
        assert flt.count == 1
        sink.reply = "554 5.7.1 refused by the next hop"
        with smtplib.SMTP(flt.host, flt.port, timeout=30) as s, pytest.raises(smtplib.SMTPDataError) as err:
            s.sendmail("a@example.org", ["b@example.net"], message)
        assert err.value.smtp_code == 554 and b"refused by the next hop" in err.value.smtp_error
        flt.reinject_to = None
        with smtplib.SMTP(flt.host, flt.port, timeout=30) as s, pytest.raises(smtplib.SMTPDataError) as err:
            s.sendmail("a@example.org", ["b@example.net"], message)
        assert err.value.smtp_code == 451
        assert flt.count == 1
