"""``smimekit encrypt`` and ``smimekit decrypt``: recipients and keys from files or from the store.

``encrypt --to`` takes certificate files or addresses (looked up in the store, then in an LDAP directory
with ``--ldap``). Every recipient certificate is checked before anything is written: valid now, fit for
e-mail encryption, for the address, not revoked, and with a path to a trust anchor (the store's anchors
for encryption and ``--trust``) — a certificate without one is refused unless ``--allow-untrusted``. The
content cipher is chosen by :func:`smimekit.selection.choose_cipher` from what the store knows of the
recipients, and the reason is printed. ``decrypt`` without key options finds the key in the store from
the recipients the message names.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, cast

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from .. import pki, selection, smime
from ..cms import ContentCipher, KeyTransport
from ..cms.recipients import PrivateKey
from ..errors import DecryptionError, LegacyAlgorithmError, RecipientNotFoundError, UsageError
from ..mime import Message
from ..selection import RecipientVerdict, TrustPolicy
from ..store.api import Store, Trust
from ._common import STDIO, atomic_output, store_option
from ._identity import decryption_keys, optional_store, required_store, store_anchors, store_intermediates
from ._keys import (
    KeyPair,
    cert_file_option,
    is_address,
    key_options,
    key_pairs,
    read_certificates,
    read_trust_anchors,
    recipient_certificate,
)
from .smime_cmds import (
    NegativeVerdict,
    Revocation,
    input_argument,
    input_size,
    kind_of,
    legacy_error,
    legacy_note,
    now,
    output_option,
    read_message,
    revocation_options,
    secrets_for,
    working,
    write_message,
)

__all__ = ["CIPHERS", "KEY_TRANSPORTS", "decrypt", "encrypt"]

CIPHERS = {
    "aes256-gcm": ContentCipher.AES256_GCM,
    "aes128-gcm": ContentCipher.AES128_GCM,
    "aes256-cbc": ContentCipher.AES256_CBC,
    "aes128-cbc": ContentCipher.AES128_CBC,
    "chacha20-poly1305": ContentCipher.CHACHA20_POLY1305,
}
KEY_TRANSPORTS = {"rsa-oaep": KeyTransport.RSA_OAEP, "rsa-pkcs1v15": KeyTransport.RSA_PKCS1V15}


# ---------------------------------------------------------------------------------------------- encrypt


@dataclass(frozen=True)
class _Recipient:
    """A recipient as named on the command line, with its certificate and where it was found."""

    named: str
    certificate: x509.Certificate
    email: str | None
    source: str  # "file", "store", "ldap" or "sender"


def _display(value: str) -> str:
    return "stdin" if value == STDIO else value


def _lookup(value: str, store: Store | None, ldap: tuple[str, str] | None, when: dt.datetime) -> _Recipient:
    """The certificate for the address ``value``: from the store, else from the LDAP directory."""
    if store is not None:
        found = store.find_by_email(value)
        if found or ldap is None:
            record = selection.recipient_certificate(store, value, at=when)
            return _Recipient(value, record.certificate, value, "store")
    if ldap is not None:
        return _Recipient(value, _from_ldap(value, ldap, store, when), value, "ldap")
    raise UsageError(
        f"cannot encrypt to {value}: there is no certificate store to look the address up in (give the "
        "certificate file, import it with 'smimekit keys import FILE', or name a directory with --ldap)"
    )


def _from_ldap(email: str, ldap: tuple[str, str], store: Store | None, when: dt.datetime) -> x509.Certificate:
    """The newest certificate fit for encryption the directory publishes for ``email`` (validated like
    any other recipient afterwards: discovery is not trust). FetchError when the directory fails."""
    from ..net.ldap import LdapDirectory  # the network stack loads only when a directory is named

    url, base = ldap
    certificates = LdapDirectory(url, base_dn=base).certificates_for(email)
    fit = [c for c in certificates if not pki.check_recipient_certificate(c, at=when, email=email)]
    if not fit:
        raise UsageError(f"cannot encrypt to {email}: the directory {url} has no usable certificate for it")
    return max(fit, key=lambda c: c.not_valid_before_utc)


def _unique(recipients: Sequence[_Recipient]) -> list[_Recipient]:
    """Each certificate once (an address and a file may name the same one), the first naming kept."""
    seen: dict[bytes, _Recipient] = {}
    for r in recipients:
        seen.setdefault(r.certificate.fingerprint(hashes.SHA256()), r)
    return list(seen.values())


def _emails_of(recipient: _Recipient) -> list[str]:
    if recipient.email is not None:
        return [recipient.email]
    return list(pki.certificate_email_addresses(recipient.certificate))


def _capabilities(store: Store | None, recipients: Sequence[_Recipient]) -> dict[str, tuple[str, ...] | None]:
    """What the store knows each recipient can decrypt (None: nothing), by address or file name."""
    out: dict[str, tuple[str, ...] | None] = {}
    for r in recipients:
        if r.source == "sender":
            continue  # smimekit itself reads every cipher it writes
        emails = _emails_of(r)
        label = r.email or (emails[0] if emails else _display(r.named))
        known = None
        for email in emails if store is not None else []:
            assert store is not None
            record = store.correspondent(email)
            if record is not None and record.capabilities:
                known = tuple(record.capabilities)
                break
        out[label] = known
    return out


@click.command()
@store_option
@click.option(
    "--to",
    "recipients",
    metavar="ADDR|CERT",
    multiple=True,
    help="A recipient (repeat for more): an address, whose certificate is looked up in the store (then in "
    "the --ldap directory), or a certificate file. RSA keys get key transport, EC and X25519/X448 keys "
    "key agreement.",
)
@cert_file_option("Your own certificate: also encrypt to it, so that you can read what you sent.")
@click.option(
    "--cipher",
    type=click.Choice(list(CIPHERS)),
    help="The content cipher; GCM and ChaCha20-Poly1305 give authEnveloped-data, CBC enveloped-data. "
    "Default: aes256-gcm when the store knows every recipient supports it, else aes256-cbc.",
)
@click.option(
    "--key-transport",
    type=click.Choice(list(KEY_TRANSPORTS)),
    default="rsa-oaep",
    show_default=True,
    help="How the content key is encrypted to RSA recipients.",
)
@click.option(
    "--trust",
    metavar="FILE_OR_DIR",
    type=click.Path(allow_dash=True),
    multiple=True,
    help="Trust anchors for recipient certificates besides the store's (repeatable).",
)
@click.option(
    "--allow-untrusted",
    is_flag=True,
    help="Encrypt to a certificate that has no path to a trust anchor (reported). Expired, revoked and "
    "unfit certificates are refused all the same.",
)
@revocation_options
@click.option(
    "--ldap", "ldap_url", metavar="URL", help="Look addresses the store lacks up in this LDAP directory."
)
@click.option("--ldap-base", metavar="DN", help="The search base in the --ldap directory.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the recipients (where each certificate came from, whether it is trusted) and the cipher "
    "with the reason for it as a JSON document: on stdout, or on stderr when the message goes to stdout.",
)
@input_argument
@output_option("the encrypted message")
def encrypt(
    recipients: tuple[str, ...],
    cert: str | None,
    cipher: str | None,
    key_transport: str,
    trust: tuple[str, ...],
    allow_untrusted: bool,
    crl_files: tuple[str, ...],
    revocation: str,
    ldap_url: str | None,
    ldap_base: str | None,
    as_json: bool,
    input: str,
    output: str,
) -> None:
    """Encrypt the message in IN to the recipients given with --to (addresses or certificate files).

    The message body is encrypted; From, To, Subject and the other header fields stay readable on the
    envelope, as RFC 8551 has it. A recipient certificate that is expired, not yet valid, revoked, not
    meant for e-mail encryption, not for the address, or without a path to a trust anchor (unless
    --allow-untrusted) is refused before anything is written. Which cipher is used, and why, is printed
    on stderr (or in the --json document).

    Exit status: 0 when encrypted; 2 for a usage or input error, including a recipient that is refused
    or unknown.
    """
    if not recipients:
        raise UsageError("give at least one recipient with --to ADDR or --to CERT")
    if (ldap_url is None) != (ldap_base is None):
        raise UsageError("--ldap and --ldap-base go together")
    ldap = (ldap_url, ldap_base) if ldap_url is not None and ldap_base is not None else None
    checks = Revocation(revocation, crl_files)
    extra_anchors = read_trust_anchors(trust) if trust else []
    when = now()
    with optional_store() as store:
        chosen: list[_Recipient] = []
        for value in recipients:
            if is_address(value):
                chosen.append(_lookup(value, store, ldap, when))
            else:
                chosen.append(_Recipient(value, recipient_certificate(value), None, "file"))
        if cert is not None:
            chosen.append(_Recipient(cert, read_certificates(cert)[0], None, "sender"))
        chosen = _unique(chosen)
        anchors = [*store_anchors(store, Trust.EMAIL_ENCRYPTION), *extra_anchors]
        policy = TrustPolicy.UNSAFE_ALLOW_UNTRUSTED if allow_untrusted else TrustPolicy.REQUIRE_PATH
        paths = store_intermediates(store)
        verdicts = [_check(r, anchors, paths, checks, store, policy, when) for r in chosen]
        if store is not None:  # what the directory published and proved trusted is kept for next time
            for r, verdict in zip(chosen, verdicts, strict=True):
                if r.source == "ldap" and verdict.trusted:
                    store.add_certificate(r.certificate, source="ldap")
        choice = selection.choose_cipher(
            _capabilities(store, chosen), requested=CIPHERS[cipher] if cipher is not None else None
        )
    for verdict in verdicts:
        if verdict.note is not None:
            click.echo(f"smimekit: warning: encrypting to an untrusted certificate: {verdict.note}", err=True)
    with read_message(input) as msg, working("encrypting", input_size(input)), atomic_output(output) as out:
        # straight to the output: no intermediate message is built (atomic_output renames only on success)
        smime.encrypt_to(
            cast(BinaryIO, out),
            msg,
            [r.certificate for r in chosen],
            cipher=choice.cipher,
            key_transport=KEY_TRANSPORTS[key_transport],
        )
    _report_encryption(chosen, verdicts, choice, as_json=as_json, to_stderr=output == STDIO)


def _check(
    recipient: _Recipient,
    anchors: Sequence[x509.Certificate],
    intermediates: Sequence[x509.Certificate],
    checks: Revocation,
    store: Store | None,
    policy: TrustPolicy,
    when: dt.datetime,
) -> RecipientVerdict:
    return selection.check_recipient(
        recipient.certificate,
        email=recipient.email,
        at=when,
        anchors=anchors,
        intermediates=intermediates,
        policy=policy,
        label=recipient.email or _display(recipient.named),  # a file is named as given
        **checks.library_options(store, at=when),
    )


def _report_encryption(
    chosen: Sequence[_Recipient],
    verdicts: Sequence[RecipientVerdict],
    choice: selection.CipherChoice,
    *,
    as_json: bool,
    to_stderr: bool,
) -> None:
    if not as_json:
        click.echo(f"smimekit: content cipher {choice.reason}", err=True)
        return
    doc = {
        "cipher": choice.cipher.label,
        "cipher_reason": choice.reason,
        "cipher_requested": choice.requested,
        "recipients": [
            {
                "named": _display(r.named),
                "source": r.source,
                "emails": _emails_of(r),
                "sha256_fingerprint": r.certificate.fingerprint(hashes.SHA256()).hex(),
                "trusted": v.trusted,
                "note": v.note,
            }
            for r, v in zip(chosen, verdicts, strict=True)
        ],
    }
    click.echo(json.dumps(doc, indent=2, ensure_ascii=False), err=to_stderr)


# ---------------------------------------------------------------------------------------------- decrypt


def decryption_pairs(pairs: Sequence[KeyPair]) -> list[tuple[x509.Certificate | None, PrivateKey]]:
    """The pairs whose key can decrypt; UsageError when keys were given and none can."""
    out: list[tuple[x509.Certificate | None, PrivateKey]] = []
    for pair in pairs:
        if isinstance(pair.key, PrivateKey):
            out.append((pair.certificate, pair.key))
    if pairs and not out:
        raise UsageError(f"{kind_of(pairs[0].key)} keys cannot decrypt (RSA, EC, X25519 and X448 keys can)")
    return out


def _decrypt_with(
    msg: Message, keys: Sequence[tuple[x509.Certificate | None, PrivateKey]], legacy: bool
) -> tuple[Message, smime.DecryptionInfo]:
    """Decrypt with the first key that opens ``msg`` (a PKCS#12 file or the store may hold several)."""
    if not keys:
        raise UsageError("give your key with --key (and --cert), or with --p12")
    failed: Exception | None = None
    for certificate, key in keys:
        try:
            return smime.decrypt(msg, key=key, certificate=certificate, legacy_ciphers=legacy)
        except DecryptionError as exc:
            failed = exc
        except RecipientNotFoundError as exc:
            failed = failed if isinstance(failed, DecryptionError) else exc
    assert failed is not None
    raise failed


@click.command()
@store_option
@key_options
@click.option(
    "--legacy", is_flag=True, help="Also decrypt the legacy ciphers 3DES and RC2 (reported when used)."
)
@input_argument
@output_option("the decrypted message")
def decrypt(
    cert: str | None,
    key: str | None,
    p12: str | None,
    password_file: str | None,
    legacy: bool,
    input: str,
    output: str,
) -> None:
    """Decrypt the message in IN with your key: the one the store holds for a recipient the message
    names, or the one given with --cert and --key, or --p12.

    With key files, --cert picks the recipient of the message that is you; without it, every recipient
    is tried with the key. A key in the store is unlocked with --password-file, SMIMEKIT_PASSWORD or a
    prompt. Writes the decrypted message, with the envelope's header fields it lacks. A message signed
    and then encrypted comes out signed: use 'smimekit open' to verify it too.

    Exit status: 0 when decrypted; 1 when the key does not open the message or the message is not
    encrypted for it (or for any key of the store); 2 for a usage or input error.
    """
    secrets = secrets_for(password_file, input)
    from_files = cert is not None or key is not None or p12 is not None
    keys = (
        decryption_pairs(key_pairs(cert=cert, key=key, p12=p12, secrets=secrets, cert_required=False))
        if from_files
        else []
    )
    with read_message(input) as msg, working("decrypting", input_size(input)):
        try:
            if not from_files:
                with required_store("to find your key (or give --key, --p12)") as store:
                    keys = decryption_keys(store, msg, secrets=secrets)
            inner, info = _decrypt_with(msg, keys, legacy)
        except RecipientNotFoundError as exc:
            raise NegativeVerdict(str(exc)) from None
        except LegacyAlgorithmError as exc:
            raise legacy_error(exc) from None
        with inner:
            write_message(inner, output)
    legacy_note(info)
