"""``smimekit send``: compose a message or read one, sign and/or encrypt it, submit it over SMTP.

Thin: :mod:`smimekit.net.smtp` speaks the protocol, :mod:`smimekit.smime` signs and encrypts, and
:mod:`smimekit.selection` (through :mod:`._identity`) picks the signing key and the recipients'
certificates from the store. The server password comes from ``--password-file``, then
``$SMIMEKIT_SMTP_PASSWORD``, then a prompt on a terminal (:mod:`._net_options`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
from cryptography import x509

from .. import cms, pki, selection, smime
from ..cms import ContentCipher
from ..cms.algorithms import SigningKey
from ..errors import StoreError, UsageError
from ..mime import Message
from ..mime.build import compose as compose_message
from ..net import smtp
from ..net.tls import TlsMode, parse_endpoint
from ..store.api import Store, Trust
from ._common import open_message, store_option
from ._identity import optional_store, signing_identity, store_intermediates, trust_anchors
from ._keys import is_address, key_pairs, read_certificates, signing_pair
from ._net_options import connection_options, key_options, server_password, tls_context
from ._secrets import PasswordSource
from .mime_cmds import attachments, body_options, body_text
from .smime_cmds import FILE, Revocation, kind_of, revocation_options
from .smime_cmds import now as clock

__all__ = ["SMTP_PASSWORD_ENV", "send"]

SMTP_PASSWORD_ENV = "SMIMEKIT_SMTP_PASSWORD"


@dataclass(frozen=True)
class _Party:
    """A --to/--cc/--bcc value: an address, and the certificate when it was given as a file."""

    address: str
    certificate: x509.Certificate | None = None


def _party(value: str) -> _Party:
    if is_address(value):
        return _Party(smtp.bare_address(value) or value)
    certificate = read_certificates(value, what="recipient certificate")[0]
    emails = pki.certificate_email_addresses(certificate)
    if not emails:
        raise UsageError(f"the certificate in {value} names no e-mail address to send to")
    return _Party(emails[0], certificate)


@contextmanager
def _message(
    input: str | None,
    *,
    from_: str | None,
    to: Sequence[_Party],
    cc: Sequence[_Party],
    subject: str | None,
    text: str | None,
    text_file: str | None,
    attach: Sequence[str],
    now: dt.datetime,
) -> Iterator[Message]:
    """The message to send: IN as read, or composed from the options."""
    if input is not None:
        if subject is not None or text is not None or text_file is not None or attach or cc:
            raise UsageError("give either the message IN or --subject/--text/--cc/--attach to compose one")
        with open_message(input) as msg:
            yield msg
        return
    if from_ is None or not to or subject is None:
        raise UsageError("to compose a message give --from, --to and --subject (or give the message as IN)")
    body = body_text(text, text_file)
    msg = compose_message(
        from_=from_,
        to=[p.address for p in to],
        cc=[p.address for p in cc],
        subject=subject,
        text=body,
        attachments=tuple(attachments(attach, inline=False)),
        date=now,
    )
    with msg:
        yield msg


def _needs_store(store: Store | None, purpose: str) -> Store:
    if store is None:
        raise StoreError(
            f"no certificate store {purpose}: import your keys first (smimekit keys import), name the store "
            "with --store or SMIMEKIT_STORE, or give the files"
        )
    return store


def _signer(
    msg: Message,
    store: Store | None,
    *,
    from_: str | None,
    files: dict[str, str | None],
    secrets: PasswordSource,
    now: dt.datetime,
) -> cms.Signer:
    """The signer: the key files given, else the store's key for --from (else the From address)."""
    if any(files.values()):
        pair = signing_pair(key_pairs(**files, secrets=secrets, cert_required=True))
    else:
        sender = smtp.bare_address(from_) if from_ else smtp.sender_address(msg)
        if sender is None:
            raise UsageError("--sign needs your key: --cert and --key, --p12, or a From address in the store")
        pair = signing_identity(_needs_store(store, f"to sign as {sender}"), sender, secrets=secrets, at=now)
    assert pair.certificate is not None
    if not isinstance(pair.key, SigningKey):
        raise UsageError(f"{kind_of(pair.key)} keys cannot sign (RSA, EC and Ed25519 keys can)")
    return cms.Signer(pair.certificate, pair.key, extra_certificates=pair.chain)


def _recipients(
    parties: Sequence[_Party],
    store: Store | None,
    *,
    trust: Sequence[str],
    checks: Revocation,
    allow_untrusted: bool,
    now: dt.datetime,
) -> list[x509.Certificate]:
    """The certificate of each party (the file given, else the store's), each fit for encryption, not
    revoked and with a path to an anchor (the store's and --trust) unless ``allow_untrusted``."""
    anchors = trust_anchors(store, Trust.EMAIL_ENCRYPTION, trust)
    intermediates = store_intermediates(store)
    policy = (
        selection.TrustPolicy.UNSAFE_ALLOW_UNTRUSTED
        if allow_untrusted
        else selection.TrustPolicy.REQUIRE_PATH
    )
    out = []
    for party in parties:
        certificate = party.certificate
        if certificate is None:
            found = _needs_store(store, f"to find the certificate of {party.address}")
            certificate = selection.recipient_certificate(found, party.address, at=now).certificate
        verdict = selection.check_recipient(
            certificate,
            email=party.address,
            at=now,
            anchors=anchors,
            intermediates=intermediates,
            policy=policy,
            **checks.library_options(store, at=now),
        )
        if verdict.note is not None:
            click.echo(f"smimekit: warning: encrypting anyway (--allow-untrusted): {verdict.note}", err=True)
        out.append(certificate)
    return out


@click.command()
@click.argument("input", metavar="[IN]", required=False, type=FILE)
@click.option(
    "--from",
    "from_",
    metavar="ADDR",
    help="The sender ('Alice <alice@example.org>'); without --cert/--key/--p12, --sign uses the store's key "
    "for it.",
)
@click.option(
    "--to",
    multiple=True,
    metavar="ADDR|CERT",
    help="A recipient: an address, or the file of their certificate (repeatable). With IN, --to names "
    "only whom to encrypt to (default: every recipient of the message).",
)
@click.option("--cc", multiple=True, metavar="ADDR|CERT", help="A copy recipient (composing; repeatable).")
@click.option(
    "--bcc", multiple=True, metavar="ADDR|CERT", help="A blind copy: in the envelope only (repeatable)."
)
@click.option("--subject", metavar="TEXT", help="The subject (composing).")
@body_options
@click.option(
    "--sign", "do_sign", is_flag=True, help="Sign: with --cert/--key/--p12, or the store's key for From."
)
@click.option(
    "--encrypt",
    "do_encrypt",
    is_flag=True,
    help="Encrypt to every recipient (certificates from --to CERT or the store) and to yourself when signing.",
)
@key_options
@click.option(
    "--trust",
    metavar="FILE_OR_DIR",
    type=click.Path(allow_dash=True),
    multiple=True,
    help="Trust anchors for the recipient certificates besides the store's (repeatable).",
)
@click.option(
    "--allow-untrusted",
    is_flag=True,
    help="Encrypt to certificates without a path to a trust anchor (a warning names each).",
)
@revocation_options
@click.option(
    "--server", metavar="HOST[:PORT]", required=True, help="The SMTP server (port 587 unless given)."
)
@connection_options(SMTP_PASSWORD_ENV, smtp_ports=True)
@click.option("--mail-from", metavar="ADDR", help="The envelope sender (default: Sender, else From).")
@click.option(
    "--rcpt", metavar="ADDR", multiple=True, help="An envelope recipient (default: To, Cc and Bcc)."
)
@store_option
def send(
    input: str | None,
    from_: str | None,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    bcc: tuple[str, ...],
    subject: str | None,
    text: str | None,
    text_file: str | None,
    attach: tuple[str, ...],
    do_sign: bool,
    do_encrypt: bool,
    cert: str | None,
    key: str | None,
    p12: str | None,
    key_password_file: str | None,
    trust: tuple[str, ...],
    allow_untrusted: bool,
    crl_files: tuple[str, ...],
    revocation: str,
    server: str,
    tls_mode: str | None,
    user: str | None,
    password_file: str | None,
    ca: Path | None,
    unsafe_no_verify: bool,
    timeout: float,
    mail_from: str | None,
    rcpt: tuple[str, ...],
) -> None:
    """Send a message over SMTP, signed and/or encrypted with S/MIME.

    Give the message as IN ('-': stdin), or compose one with --from, --to, --subject and --text. Bcc
    fields are removed before signing. The connection is always TLS (STARTTLS, or TLS from the first byte
    on port 465 or with --tls) and the server's certificate is verified.

    Exit status: 0 when the server accepted the message for every recipient; 2 otherwise, with one line
    saying why (refused, login failed, TLS verification failed, timeout, server gone).
    """
    endpoint = parse_endpoint(server, default_port=smtp.SUBMISSION_PORT)
    mode = TlsMode(tls_mode) if tls_mode else smtp.default_tls(endpoint.port)
    if password_file is not None and user is None:
        raise UsageError("--password-file is the server's password: give --user too")
    if not do_sign and (cert or key or p12):
        raise UsageError("--cert, --key and --p12 are for --sign: give --sign too")
    secrets = PasswordSource(key_password_file)
    when = clock()
    to_parties = [_party(v) for v in to]
    cc_parties = [_party(v) for v in cc]
    bcc_parties = [_party(v) for v in bcc]
    with (
        optional_store() as store,
        _message(
            input,
            from_=from_,
            to=to_parties,
            cc=cc_parties,
            subject=subject,
            text=text,
            text_file=text_file,
            attach=attach,
            now=when,
        ) as msg,
    ):
        envelope = smtp.envelope_of(msg, mail_from=mail_from, recipients=rcpt)
        if not rcpt and bcc_parties:
            extra = tuple(p.address for p in bcc_parties)
            envelope = smtp.Envelope(envelope.mail_from, tuple(dict.fromkeys(envelope.recipients + extra)))
        smtp.strip_bcc(msg)
        signer = None
        if do_sign:
            files = {"cert": cert, "key": key, "p12": p12}
            signer = _signer(msg, store, from_=from_, files=files, secrets=secrets, now=when)
        certificates: list[x509.Certificate] = []
        cipher = ContentCipher.AES256_GCM
        if do_encrypt:
            if input is None or to_parties:
                parties = [*to_parties, *cc_parties, *bcc_parties]
            else:
                parties = [_Party(a) for a in envelope.recipients]
            checks = Revocation(revocation, crl_files)
            certificates = _recipients(
                parties, store, trust=trust, checks=checks, allow_untrusted=allow_untrusted, now=when
            )
            cipher = _cipher(store, parties)
        data = _protect(msg, signer, certificates, cipher, when)
    password = None
    if user is not None:
        password = server_password(password_file, SMTP_PASSWORD_ENV, user, endpoint)
    settings = smtp.SmtpServer(
        endpoint,
        mode,
        tls_context(ca, unsafe_no_verify, endpoint),
        user=user,
        password=password,
        timeout=timeout,
    )
    result = smtp.submit(data, server=settings, envelope=envelope)
    click.echo(
        f"sent {result.size} bytes from {result.envelope.mail_from or '<>'} to "
        f"{', '.join(result.envelope.recipients)} via {result.endpoint} ({result.tls_version or 'TLS'})"
    )


def _cipher(store: Store | None, parties: Sequence[_Party]) -> ContentCipher:
    """The strongest cipher every recipient is known (from their signed mail) to read; the reason goes
    to stderr as ``smimekit encrypt`` prints it."""
    known: dict[str, tuple[str, ...] | None] = {}
    for party in parties:
        record = store.correspondent(party.address) if store is not None else None
        known[party.address] = (
            tuple(record.capabilities) if record is not None and record.capabilities else None
        )
    choice = selection.choose_cipher(known)
    click.echo(f"smimekit: content cipher {choice.reason}", err=True)
    return choice.cipher


def _protect(
    msg: Message,
    signer: cms.Signer | None,
    certificates: Sequence[x509.Certificate],
    cipher: ContentCipher,
    now: dt.datetime,
) -> bytes:
    """The message as it goes on the wire: signed, then encrypted (to the signer too), as asked."""
    made: list[Message] = []
    current = msg
    try:
        if signer is not None:
            current = smime.sign(current, signer, signing_time=now)
            made.append(current)
        if certificates:
            own = signer.certificate if signer is not None else None
            current = smime.encrypt(current, certificates, cipher=cipher, include_sender=own)
            made.append(current)
        return current.to_bytes()
    finally:
        for m in made:
            m.close()
