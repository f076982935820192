"""S/MIME commands: ``sign``, ``verify``, ``encrypt``, ``decrypt`` and ``open``.

Thin: options become library objects (:mod:`._keys`, :mod:`._secrets`), :mod:`smimekit.smime` does the
work, and a negative verdict becomes one line on stderr and exit code 1 through :mod:`._errors`. The
clock is read here, never in the library: ``sign`` stamps the signing time, ``verify`` and ``open``
validate at ``--at`` or now.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO, TypeVar, cast

import click
from cryptography import x509
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from .. import cms, pki, smime
from ..cms import ContentCipher, DigestAlgorithm, KeyTransport
from ..cms.algorithms import SigningKey
from ..cms.recipients import PrivateKey
from ..errors import (
    DecryptionError,
    LegacyAlgorithmError,
    RecipientNotFoundError,
    SignatureError,
    UsageError,
)
from ..mime import FileSource, Message, MimeParser
from ..mime.source import CHUNK
from ..smime import LayerKind, LayerReport, OpenResult, SignatureReport, VerificationReport
from ._common import STDIO, atomic_output, open_message, reason
from ._errors import EXIT_NEGATIVE
from ._keys import (
    KeyPair,
    cert_file_option,
    key_options,
    key_pairs,
    read_certificates,
    read_trust_anchors,
    recipient_certificate,
    signing_pair,
)
from ._render import make_console, safe_text
from ._secrets import PasswordSource

__all__ = ["decrypt", "encrypt", "open_cmd", "sign", "verify"]

F = TypeVar("F", bound=Callable[..., Any])
_FILE = click.Path(dir_okay=False, allow_dash=True)

DIGESTS = {
    "sha256": DigestAlgorithm.SHA256,
    "sha384": DigestAlgorithm.SHA384,
    "sha512": DigestAlgorithm.SHA512,
}
CIPHERS = {
    "aes256-gcm": ContentCipher.AES256_GCM,
    "aes128-gcm": ContentCipher.AES128_GCM,
    "aes256-cbc": ContentCipher.AES256_CBC,
    "aes128-cbc": ContentCipher.AES128_CBC,
    "chacha20-poly1305": ContentCipher.CHACHA20_POLY1305,
}
KEY_TRANSPORTS = {"rsa-oaep": KeyTransport.RSA_OAEP, "rsa-pkcs1v15": KeyTransport.RSA_PKCS1V15}
#: Inputs smaller than this get no progress display even on a terminal (they take no time).
PROGRESS_MIN_SIZE = 16 << 20


def _now() -> dt.datetime:
    """The current time: the signing time of ``sign``, the validation time of ``verify`` and ``open``."""
    return dt.datetime.now(dt.UTC)


class NegativeVerdict(click.ClickException):
    """A verdict that is not an input error (exit 1), for the library errors that ``_errors`` maps to 2."""

    exit_code = EXIT_NEGATIVE


def _kind(key: object) -> str:
    """``Ed25519`` for an Ed25519PrivateKey, and so on."""
    return type(key).__name__.lstrip("_").removesuffix("PrivateKey") or "such"


def _iso_time(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    """``--at``: an ISO 8601 date or date and time; without a zone it is UTC."""
    if value is None:
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time such as 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


# ---------------------------------------------------------------------------------------------- options


def _input_argument(command: F) -> F:
    return click.argument("input", metavar="IN", type=_FILE)(command)


def _output_option(what: str, *, default: str | None = STDIO) -> Callable[[F], F]:
    if default == STDIO:
        text = f"Where to write {what} (default: stdout)."
    else:
        text = f"Write {what} to OUT ('-': stdout, and the report goes to stderr)."
    return click.option("-o", "--output", metavar="OUT", type=_FILE, default=default, help=text)


def _trust_options(command: F) -> F:
    command = click.option(
        "--at",
        metavar="ISO-8601",
        callback=_iso_time,
        help="Validate the signer certificates as at this time instead of now (e.g. 2026-01-31T12:00:00Z).",
    )(command)
    command = click.option(
        "--chain",
        metavar="FILE",
        type=_FILE,
        multiple=True,
        help="Intermediate CA certificates to build paths with; not trusted by themselves (repeatable).",
    )(command)
    return click.option(
        "--trust",
        metavar="FILE_OR_DIR",
        type=click.Path(allow_dash=True),
        multiple=True,
        help="Trust anchors: a PEM bundle, a DER file or a directory of PEM/DER files (repeatable).",
    )(command)


def _json_option(command: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print the report as a JSON document.")(
        command
    )


# ---------------------------------------------------------------------------------------------- progress


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _input_size(path: str) -> int:
    try:
        return 0 if path == STDIO else os.path.getsize(path)
    except OSError:
        return 0


def _progress_wanted(size: int) -> bool:
    return size >= PROGRESS_MIN_SIZE and _stderr_is_tty()


@contextlib.contextmanager
def read_message(path: str) -> Iterator[Message]:
    """Parse the message in ``path`` (``-``: stdin) in place, so that its bodies stay on disk; a large file
    shows a progress bar on stderr when stderr is a terminal."""
    size = _input_size(path)
    if not _progress_wanted(size) or os.path.isdir(path):
        with open_message(path) as msg:
            yield msg
        return
    try:
        src = FileSource.open(path)
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {reason(exc)}") from exc
    try:
        parser = MimeParser(src)
        columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(f"reading {os.path.basename(path)}", total=src.size)
            pos = 0
            while pos < src.size and (piece := src.read(pos, pos + CHUNK)):
                parser.feed(piece)
                pos += len(piece)
                bar.update(task, completed=pos)
        yield parser.close()
    finally:
        src.close()


@contextlib.contextmanager
def _working(what: str, size: int) -> Iterator[None]:
    """A spinner on stderr while the library works on a large input (terminal only)."""
    if not _progress_wanted(size):
        yield
        return
    with Console(stderr=True).status(f"{what}…"):
        yield


def _secrets_for(password_file: str | None, input: str) -> PasswordSource:
    if password_file == STDIO and input == STDIO:
        raise UsageError("stdin ('-') cannot be both the password file and the message")
    return PasswordSource(password_file)


def _write(msg: Message, output: str) -> None:
    with atomic_output(output) as out:
        msg.write_to(out)


# ---------------------------------------------------------------------------------------------- sign


@click.command()
@key_options
@click.option(
    "--chain",
    metavar="FILE",
    type=_FILE,
    multiple=True,
    help="Intermediate CA certificates to put into the signature (repeatable).",
)
@click.option(
    "--opaque",
    is_flag=True,
    help="Sign as application/pkcs7-mime (signed-data), which only S/MIME programs can show; the default "
    "is clear-signed multipart/signed.",
)
@click.option(
    "--digest",
    type=click.Choice(list(DIGESTS)),
    help="The message digest (default: sha256; sha512 for Ed25519 keys).",
)
@_input_argument
@_output_option("the signed message")
def sign(
    cert: str | None,
    key: str | None,
    p12: str | None,
    password_file: str | None,
    chain: tuple[str, ...],
    opaque: bool,
    digest: str | None,
    input: str,
    output: str,
) -> None:
    """Sign the message in IN with your key and certificate.

    The message body is put in canonical form and signed; From, To, Subject and the other header
    fields stay outside the signature, as RFC 8551 has it. The signing time is the current time.
    """
    pair = signing_pair(
        key_pairs(cert=cert, key=key, p12=p12, secrets=_secrets_for(password_file, input), cert_required=True)
    )
    assert pair.certificate is not None
    if not isinstance(pair.key, SigningKey):
        raise UsageError(f"{_kind(pair.key)} keys cannot sign (RSA, EC and Ed25519 keys can)")
    extra = list(pair.chain)
    for path in chain:
        extra += read_certificates(path, what="chain file")
    signer = cms.Signer(
        pair.certificate,
        pair.key,
        digest=DIGESTS[digest] if digest else None,
        extra_certificates=tuple(extra),
    )
    with read_message(input) as msg, _working("signing", _input_size(input)):
        signed = smime.sign(msg, signer, signing_time=_now(), opaque=opaque)
        _write(signed, output)


# ---------------------------------------------------------------------------------------------- verify


@click.command()
@_trust_options
@click.option(
    "--legacy",
    is_flag=True,
    help="Also trust certificate paths signed with SHA-1 or holding 1024-bit keys, as old mail needs "
    "(reported when used).",
)
@_json_option
@_input_argument
def verify(
    trust: tuple[str, ...],
    chain: tuple[str, ...],
    at: dt.datetime | None,
    legacy: bool,
    as_json: bool,
    input: str,
) -> None:
    """Verify every S/MIME signature of the message in IN and print a report.

    For each signature: who signed (subject, e-mail addresses, issuer, serial number, SHA-256
    fingerprint), when, with which algorithms, and the verdict in three parts — intact (the content is
    what was signed), valid (the signature maths holds) and trusted (a path to a --trust anchor for
    e-mail protection, at the signing time and now) — with the reason when one fails; which parts the
    signature covers and which are not signed; whether the signer matches From; weak algorithms.

    Exit status: 0 when every signature is intact, valid and trusted; 1 when one is not (the reason on
    stderr, the report still on stdout); 2 for a usage or input error (not S/MIME, malformed, unreadable).
    """
    if not trust:
        raise UsageError("give the trust anchors with --trust FILE_OR_DIR (a PEM bundle or a directory)")
    anchors = read_trust_anchors(trust)
    intermediates = _intermediates(chain)
    with read_message(input) as msg, _working("verifying", _input_size(input)):
        report = smime.verify(
            msg, now=at or _now(), anchors=anchors, intermediates=intermediates, legacy_algorithms=legacy
        )
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "ok": report.ok}, indent=2, ensure_ascii=False))
    else:
        console = make_console()
        _render_verification(report, console)
    if not report.ok:
        raise SignatureError(tuple(_failures(report)))


def _intermediates(paths: Sequence[str]) -> list[x509.Certificate]:
    return [c for path in paths for c in read_certificates(path, what="chain file")]


def _who(sig: SignatureReport) -> str:
    if sig.signer is not None:
        return sig.signer.emails[0] if sig.signer.emails else sig.signer.subject
    return sig.signer_id


def _failures(report: VerificationReport) -> list[str]:
    """One sentence per signature that is not intact, valid and trusted."""
    if not report.signatures:
        return ["the message holds no signature"]
    out = []
    for n, sig in enumerate(report.signatures, 1):
        if sig.ok:
            continue
        who = safe_text(_who(sig))
        if sig.intact and sig.valid:
            out.append(f"signature {n} ({who}) is not trusted: {sig.trust.reason}")
        else:
            out.append(f"signature {n} ({who}): {'; '.join(sig.reasons) or 'it is not intact or not valid'}")
    return out


# ---------------------------------------------------------------------------------------------- rendering


def _time(value: dt.datetime | None) -> str:
    if value is None:
        return "not given"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _yes(flag: bool) -> tuple[str, str]:
    return ("yes", "green") if flag else ("no", "bold red")


def _line(console: Console, indent: str, label: str, *pieces: str | tuple[str, str]) -> None:
    text = Text(indent)
    text.append(f"{label + ':':<14}", style="bold")
    for piece in pieces:
        if isinstance(piece, tuple):
            text.append(safe_text(piece[0]), style=piece[1])
        else:
            text.append(safe_text(piece))
    console.print(text)


def _parts(paths: Sequence[str]) -> str:
    return f"part{'s' if len(paths) > 1 else ''} {', '.join(paths)}"


def _where(part: str) -> str:
    return "the whole message" if part == "1" else f"part {part}"


def _render_signature(sig: SignatureReport, n: int, total: int, console: Console, indent: str) -> None:
    console.print(Text(f"{indent}Signature {n} of {total}: {sig.form}, {_where(sig.part)}", style="bold"))
    sub = indent + "  "
    if sig.signer is not None:
        s = sig.signer
        _line(console, sub, "Signer", s.subject)
        _line(console, sub, "E-mail", ", ".join(s.emails) or "none in the certificate")
        _line(console, sub, "Issuer", s.issuer)
        _line(console, sub, "Serial", format(s.serial_number, "x"))
        _line(console, sub, "SHA-256", s.sha256_fingerprint)
        _line(console, sub, "Key", f"{s.public_key}, valid {_time(s.not_before)} to {_time(s.not_after)}")
    else:
        _line(console, sub, "Signer", sig.signer_id, ("  (certificate not found)", "red"))
    _line(console, sub, "Signed at", _time(sig.signing_time))
    algorithms = ", ".join(a for a in (sig.digest_algorithm, sig.signature_algorithm) if a) or "unknown"
    _line(console, sub, "Algorithms", algorithms)
    cms_reasons = tuple(r for r in sig.reasons if r != sig.trust.reason)
    _line(
        console,
        sub,
        "Intact",
        _yes(sig.intact),
        "" if sig.intact else " — the content is not what was signed",
    )
    _line(console, sub, "Valid", _yes(sig.valid), "" if sig.valid else " — the signature does not hold")
    for r in cms_reasons:
        _line(console, sub, "  because", r)
    if sig.diagnosis:
        _line(console, sub, "Diagnosis", (sig.diagnosis, "yellow"))
    if sig.trusted:
        now = sig.trust.now
        path = " → ".join(now.path) if now is not None else ""
        when = "at the signing time and now" if sig.trust.at_signing_time is not None else "now"
        _line(console, sub, "Trusted", _yes(True), f" — {when}: {path}")
    else:
        _line(console, sub, "Trusted", _yes(False), f" — {sig.trust.reason}")
        for label, verdict in (("  at signing", sig.trust.at_signing_time), ("  now", sig.trust.now)):
            if verdict is not None:
                state = "trusted" if verdict.trusted else verdict.reason
                _line(console, sub, label, f"{_time(verdict.validated_at)}: {state}")
    _line(console, sub, "Covers", _parts(sig.covered_parts) if sig.covered_parts else "nothing")
    _line(console, sub, "From match", _yes(sig.from_matches))
    if sig.weak:
        _line(console, sub, "Weak", (", ".join(sig.weak), "yellow"))


def _render_verification(report: VerificationReport, console: Console, indent: str = "") -> None:
    total = len(report.signatures)
    for n, sig in enumerate(report.signatures, 1):
        _render_signature(sig, n, total, console, indent)
    unsigned = ", ".join(report.unsigned_parts)
    _line(
        console,
        indent,
        "Unsigned",
        (f"{_parts(report.unsigned_parts)} NOT covered by any signature", "bold yellow")
        if unsigned
        else "none: the signatures cover all content",
    )
    senders = ", ".join(report.from_addresses) or "none"
    match = ("matches a signer", "green") if report.from_matches else ("matches no signer", "bold red")
    _line(console, indent, "From", f"{senders} — ", match)
    _line(console, indent, "Weak algs", (", ".join(report.weak), "yellow") if report.weak else "none")
    for note in report.notes:
        _line(console, indent, "Note", note)
    if report.ok:
        verdict = "OK: every signature is intact, valid and trusted"
        _line(
            console,
            indent,
            "Verdict",
            (verdict, "bold green"),
            "" if not unsigned else " (but not all content is signed)",
        )
    else:
        bad = sum(1 for s in report.signatures if not s.ok)
        _line(console, indent, "Verdict", (f"NOT OK: {bad} of {total} signatures failed", "bold red"))


_LAYER_NAMES = {
    LayerKind.SIGNED: "signed",
    LayerKind.ENVELOPED: "encrypted (enveloped-data)",
    LayerKind.AUTH_ENVELOPED: "encrypted (authEnveloped-data)",
    LayerKind.COMPRESSED: "compressed (compressed-data)",
}


def _render_layer(layer: LayerReport, n: int, console: Console) -> None:
    console.print(Text(f"Layer {n}: {_LAYER_NAMES[layer.kind]}", style="bold"))
    if layer.decryption is not None:
        d = layer.decryption
        how = f"{d.cipher.label}, {d.recipient_type.name.lower().replace('_', ' ')}, {d.size} bytes, "
        _line(
            console, "  ", "Decrypted", how, "authenticated" if d.authenticated else "not authenticated (CBC)"
        )
        if d.legacy:
            _line(console, "  ", "Legacy", ("a legacy cipher was accepted (--legacy)", "yellow"))
    if layer.verification is not None:
        _render_verification(layer.verification, console, "  ")
    for note in layer.notes:
        _line(console, "  ", "Note", note)


# ---------------------------------------------------------------------------------------------- encrypt


@click.command()
@click.option(
    "--to",
    "recipients",
    metavar="CERT",
    multiple=True,
    help="The certificate file of a recipient (repeat for more). RSA keys get key transport, EC and "
    "X25519/X448 keys key agreement.",
)
@cert_file_option("Your own certificate: also encrypt to it, so that you can read what you sent.")
@click.option(
    "--cipher",
    type=click.Choice(list(CIPHERS)),
    default="aes256-gcm",
    show_default=True,
    help="The content cipher; GCM and ChaCha20-Poly1305 give authEnveloped-data, CBC enveloped-data.",
)
@click.option(
    "--key-transport",
    type=click.Choice(list(KEY_TRANSPORTS)),
    default="rsa-oaep",
    show_default=True,
    help="How the content key is encrypted to RSA recipients.",
)
@_input_argument
@_output_option("the encrypted message")
def encrypt(
    recipients: tuple[str, ...], cert: str | None, cipher: str, key_transport: str, input: str, output: str
) -> None:
    """Encrypt the message in IN to the certificates given with --to.

    The message body is encrypted; From, To, Subject and the other header fields stay readable on the
    envelope, as RFC 8551 has it. A recipient certificate that is expired, not yet valid or not meant for
    e-mail encryption is refused.
    """
    if not recipients:
        raise UsageError("give at least one recipient certificate with --to CERT")
    now = _now()
    certificates = [(path, recipient_certificate(path)) for path in recipients]
    if cert is not None:
        certificates.append((cert, read_certificates(cert)[0]))
    for path, certificate in certificates:
        problems = pki.check_recipient_certificate(certificate, at=now)
        if problems:
            raise UsageError(f"cannot encrypt to {'stdin' if path == STDIO else path}: {problems[0]}")
    with (
        read_message(input) as msg,
        _working("encrypting", _input_size(input)),
        atomic_output(output) as out,
    ):
        # straight to the output: no intermediate message is built (atomic_output renames only on success)
        smime.encrypt_to(
            cast(BinaryIO, out),
            msg,
            [c for _, c in certificates],
            cipher=CIPHERS[cipher],
            key_transport=KEY_TRANSPORTS[key_transport],
        )


# ---------------------------------------------------------------------------------------------- decrypt


def _decryption_keys(pairs: Sequence[KeyPair]) -> list[tuple[x509.Certificate | None, PrivateKey]]:
    out: list[tuple[x509.Certificate | None, PrivateKey]] = []
    for pair in pairs:
        if isinstance(pair.key, PrivateKey):
            out.append((pair.certificate, pair.key))
    if pairs and not out:
        raise UsageError(f"{_kind(pairs[0].key)} keys cannot decrypt (RSA, EC, X25519 and X448 keys can)")
    return out


def _legacy_error(exc: LegacyAlgorithmError) -> UsageError:
    name = exc.name or exc.oid
    return UsageError(
        f"the message is encrypted with the legacy cipher {name}: give --legacy to decrypt it anyway"
    )


def _decrypt_with(
    msg: Message, keys: Sequence[tuple[x509.Certificate | None, PrivateKey]], legacy: bool
) -> tuple[Message, smime.DecryptionInfo]:
    """Decrypt with the first key that opens ``msg`` (a PKCS#12 file may hold several keys)."""
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


def _legacy_note(info: smime.DecryptionInfo) -> None:
    if info.legacy:
        click.echo(
            f"smimekit: warning: the message was encrypted with the legacy cipher {info.cipher.label}",
            err=True,
        )


@click.command()
@key_options
@click.option(
    "--legacy", is_flag=True, help="Also decrypt the legacy ciphers 3DES and RC2 (reported when used)."
)
@_input_argument
@_output_option("the decrypted message")
def decrypt(
    cert: str | None,
    key: str | None,
    p12: str | None,
    password_file: str | None,
    legacy: bool,
    input: str,
    output: str,
) -> None:
    """Decrypt the message in IN with your key.

    --cert picks the recipient of the message that is you; without it, every recipient is tried with
    the key. Writes the decrypted message, with the envelope's header fields it lacks. A message signed
    and then encrypted comes out signed: use 'smimekit open' to verify it too.

    Exit status: 0 when decrypted; 1 when the key does not open the message or the message is not
    encrypted for it; 2 for a usage or input error.
    """
    pairs = key_pairs(
        cert=cert, key=key, p12=p12, secrets=_secrets_for(password_file, input), cert_required=False
    )
    keys = _decryption_keys(pairs)
    with read_message(input) as msg, _working("decrypting", _input_size(input)):
        try:
            inner, info = _decrypt_with(msg, keys, legacy)
        except RecipientNotFoundError as exc:
            raise NegativeVerdict(str(exc)) from None
        except LegacyAlgorithmError as exc:
            raise _legacy_error(exc) from None
        with inner:
            _write(inner, output)
    _legacy_note(info)


# ---------------------------------------------------------------------------------------------- open


@click.command("open")
@key_options
@_trust_options
@click.option(
    "--legacy",
    is_flag=True,
    help="Also accept the legacy ciphers 3DES and RC2 and certificate paths signed with SHA-1 or holding "
    "1024-bit keys (reported when used).",
)
@_json_option
@_input_argument
@_output_option("the innermost message", default=None)
def open_cmd(
    cert: str | None,
    key: str | None,
    p12: str | None,
    password_file: str | None,
    trust: tuple[str, ...],
    chain: tuple[str, ...],
    at: dt.datetime | None,
    legacy: bool,
    as_json: bool,
    input: str,
    output: str | None,
) -> None:
    """Decrypt and verify every S/MIME layer of the message in IN and print a report of each.

    Layers are unwrapped outermost first: signed (verified as 'smimekit verify' does, against the
    --trust anchors), encrypted (with your key: --cert and --key, or --p12) and compressed. -o writes
    the innermost message.

    Exit status: 0 when every layer opened and every signature is intact, valid and trusted; 1 when a
    signature is not, or decryption failed; 2 for a usage or input error.
    """
    pairs: list[KeyPair] = []
    if cert is not None or key is not None or p12 is not None:
        pairs = key_pairs(
            cert=cert, key=key, p12=p12, secrets=_secrets_for(password_file, input), cert_required=False
        )
    keys = _decryption_keys(pairs)
    anchors = read_trust_anchors(trust) if trust else []
    intermediates = _intermediates(chain)
    with read_message(input) as msg, _working("opening", _input_size(input)):
        try:
            result = smime.open(
                msg,
                now=at or _now(),
                keys=keys,
                anchors=anchors,
                intermediates=intermediates,
                legacy_ciphers=legacy,
                legacy_algorithms=legacy,
            )
        except RecipientNotFoundError as exc:
            if not keys:
                raise UsageError(
                    "the message is encrypted: give your key with --cert and --key, or --p12"
                ) from None
            raise NegativeVerdict(str(exc)) from None
        except LegacyAlgorithmError as exc:
            raise _legacy_error(exc) from None
        with result.inner:
            _report_open(result, as_json, to_stderr=output == STDIO)
            if output is not None:
                _write(result.inner, output)
    for layer in result.layers:
        if layer.decryption is not None:
            _legacy_note(layer.decryption)
    if not result.ok:
        failures = [f for layer in result.layers if layer.verification for f in _failures(layer.verification)]
        raise SignatureError(tuple(failures))


def _report_open(result: OpenResult, as_json: bool, *, to_stderr: bool) -> None:
    if as_json:
        doc = json.dumps({**result.to_dict(), "ok": result.ok}, indent=2, ensure_ascii=False)
        click.echo(doc, err=to_stderr)
        return
    console = make_console(stderr=to_stderr)
    for n, layer in enumerate(result.layers, 1):
        _render_layer(layer, n, console)
    if not any(layer.verification for layer in result.layers):
        _line(console, "", "Verdict", ("the message is not signed", "yellow"))
