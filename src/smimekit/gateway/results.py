"""The Authentication-Results field the gateway writes (RFC 8601, with the ``smime`` method of RFC 7281),
and reading the authserv-id of fields that arrived (to remove forged ones)."""

from __future__ import annotations

import re

from smimekit.smime import SignatureReport, VerificationReport

__all__ = ["AUTH_RESULTS", "authserv_id_of", "result_field"]

AUTH_RESULTS = "Authentication-Results"
_COMMENT = re.compile(r"\([^()]*\)")


def authserv_id_of(value: str) -> str:
    """The authserv-id of an Authentication-Results value (before the first ``;``, comments and a
    version number dropped), lower-cased."""
    head = value.split(";", 1)[0]
    for _ in range(4):  # nested comments, a few levels deep
        head = _COMMENT.sub(" ", head)
    words = head.split()
    return words[0].strip('"').lower() if words else ""


def _quote(value: str) -> str:
    """A token, or a quoted-string; anything outside printable ASCII (from a hostile certificate) becomes
    ``?``, so the field is always one well-formed header value."""
    value = "".join(c if " " <= c <= "~" else "?" for c in value)
    if value and re.fullmatch(r"[A-Za-z0-9!#$%&'*+\-.^_`|~@]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _resinfo(sig: SignatureReport | None, result: str, reason: str, comment: str) -> str:
    parts = [f"smime={result}"]
    if comment:
        clean = "".join(c if " " <= c <= "~" and c not in "()\\" else "?" for c in comment)
        parts.append(f"({clean})")
    if reason:
        parts.append(f"reason={_quote(reason[:200])}")
    if sig is not None:
        if sig.signer is not None and sig.signer.emails:
            parts.append(f"body.smime-identifier={_quote(sig.signer.emails[0])}")
        parts.append(f"body.smime-part={_quote(sig.part)}")
        if sig.signer is not None:
            parts.append(f"body.smime-serial={format(sig.signer.serial_number, 'x')}")
            parts.append(f"body.smime-issuer={_quote(sig.signer.issuer)}")
    return " ".join(parts)


def result_field(
    authserv_id: str,
    *,
    report: VerificationReport | None,
    decryption: str,
    error: str = "",
    encrypted_unread: bool = False,
) -> str:
    """The Authentication-Results value (see the module docstring). ``decryption`` is the comment on
    encryption; ``error`` explains a signature that could not be read."""
    if encrypted_unread:
        infos = [_resinfo(None, "neutral", "the message is encrypted and was not decrypted", decryption)]
    elif error:
        infos = [_resinfo(None, "permerror", error, decryption)]
    elif report is None or not report.signatures:
        infos = [_resinfo(None, "none", "", decryption)]
    else:
        infos = []
        for sig in report.signatures:
            if sig.ok:
                result, why = "pass", ""
            elif not (sig.intact and sig.valid):
                result, why = "fail", "; ".join(sig.reasons) or "the signature does not verify"
            else:
                result, why = "policy", sig.trust.reason or "the signer is not trusted"
            infos.append(_resinfo(sig, result, why, decryption))
    return f"{authserv_id}; " + "; ".join(infos)
