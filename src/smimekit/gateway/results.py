"""The Authentication-Results field the gateway writes (RFC 8601, with the ``smime`` method of RFC 7281),
and reading the authserv-id of fields that arrived (to remove forged ones)."""

from __future__ import annotations

import re

from smimekit.smime import SignatureReport, VerificationReport

__all__ = ["AUTH_RESULTS", "UNREADABLE", "authserv_id_of", "claims", "result_field"]

AUTH_RESULTS = "Authentication-Results"
#: Longer values are not read (a real field's authserv-id comes within its first few hundred characters).
MAX_SCANNED = 4096
#: The authserv-id of a value that cannot be read: it claims to be anyone's, so it is treated as ours.
UNREADABLE = "\x00unreadable"
#: RFC 2045 token characters: printable ASCII but space and the tspecials ``()<>@,;:\\"/[]?=``.
TOKEN_CHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - frozenset('()<>@,;:\\"/[]?=')


def authserv_id_of(value: str) -> str:
    """The authserv-id of an Authentication-Results value, lower-cased and without a trailing dot: its first token or quoted-string
    after any comments and folding white space (RFC 8601 §2.2 with the CFWS of RFC 5322 §3.2.2: nested
    comments of any depth, quoted-pairs inside them and in the quoted-string).

    A value that cannot be read that way (an unbalanced comment or quote, no id, something else than a
    version or ``;`` after it, more than :data:`MAX_SCANNED` characters of comments) gives :data:`UNREADABLE`, which no configured authserv-id equals;
    :func:`claims` treats it as ours, so that a field we cannot read is removed rather than believed.
    ``""`` is returned only for an empty (all-blank) value.
    """
    text = value[:MAX_SCANNED]
    pos = _skip_cfws(text, 0)
    if pos is None:
        return UNREADABLE
    if pos >= len(text):
        return "" if not text.strip() else UNREADABLE
    if text[pos] == '"':
        found = _quoted_string(text, pos)
        if found is None:
            return UNREADABLE
        ident, end = found
    else:
        end = pos
        while end < len(text) and text[end] in TOKEN_CHARS:
            end += 1
        ident = text[pos:end]
    after = _skip_cfws(text, end)
    # what follows the id is ";" or a version number (RFC 8601 §2.2: there is always a ";" before the
    # results, "none" included); anything else means this is not the field's start as we read it
    if not ident or after is None or after >= len(text) or text[after] not in ";0123456789":
        return UNREADABLE
    return ident.lower().rstrip(".")  # "gw.example.org." is the same host: it claims to be us too


def claims(value: str, authserv_id: str) -> bool:
    """Whether the Authentication-Results ``value`` claims to come from ``authserv_id`` (compared without
    case) or cannot be read: either way a field that arrived with it must be removed (fail closed)."""
    found = authserv_id_of(value)
    return found == UNREADABLE or found == authserv_id.lower().rstrip(".")


def _skip_cfws(text: str, pos: int) -> int | None:
    """The position after the CFWS starting at ``pos`` (comments nest to any depth; a quoted-pair may
    escape a parenthesis); None when a comment is not closed."""
    depth = 0
    while pos < len(text):
        c = text[pos]
        if c == "\\" and depth:
            pos += 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            if not depth:
                return pos  # a stray ")": not CFWS, so the caller finds no token here
            depth -= 1
        elif not depth and c not in " \t\r\n":
            return pos
        pos += 1
    return None if depth else pos


def _quoted_string(text: str, pos: int) -> tuple[str, int] | None:
    """The content of the quoted-string opening at ``pos`` (quoted-pairs resolved) and the position after
    its closing quote; None when it is not closed."""
    out: list[str] = []
    pos += 1
    while pos < len(text):
        c = text[pos]
        if c == "\\":
            if pos + 1 >= len(text):
                return None
            out.append(text[pos + 1])
            pos += 2
            continue
        if c == '"':
            return "".join(out).strip(), pos + 1
        if c not in "\r\n":  # folding inside the quotes is not part of the value
            out.append(c)
        pos += 1
    return None


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
