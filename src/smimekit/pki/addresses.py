"""The e-mail addresses a certificate names, and how an address is matched against them.

RFC 8550 §3: addresses come from the subjectAltName (rfc822Name, and the SmtpUTF8Mailbox otherName of
RFC 8398 for internationalised local parts); the legacy PKCS#9 emailAddress attribute of the subject is
used only when the subjectAltName names no mailbox. Comparison follows RFC 5280 §7.5 and RFC 8398 §5:
the local part exactly (it is case-sensitive), the domain case-insensitively, with A-labels (``xn--``)
and U-labels compared as the same name.
"""

from __future__ import annotations

import unicodedata

from asn1crypto import core as asn1_core
from cryptography import x509
from cryptography.x509.oid import NameOID

from smimekit.errors import PkiError

__all__ = [
    "SMTP_UTF8_MAILBOX",
    "certificate_email_addresses",
    "check_email_argument",
    "eai_name_constraints_problem",
    "email_matches",
    "smtp_utf8_mailboxes",
]

#: id-on-SmtpUTF8Mailbox (RFC 8398 §3)
SMTP_UTF8_MAILBOX = x509.ObjectIdentifier("1.3.6.1.5.5.7.8.9")

_MAX_ADDRESS = 320  # 64 octets of local part, @, 255 of domain (RFC 5321 §4.5.3.1)


def certificate_email_addresses(certificate: x509.Certificate) -> tuple[str, ...]:
    """The mailbox addresses ``certificate`` names, as written in it.

    subjectAltName rfc822Name values (ASCII only, as IA5String requires: a non-ASCII rfc822Name is
    malformed and left out), then SmtpUTF8Mailbox values; the subject's emailAddress only when the
    certificate has no subjectAltName. An unreadable extension counts as naming nothing.
    """
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError:  # a malformed extension: it vouches for nothing
        return ()
    if san is not None:
        # With a subjectAltName the subject's emailAddress is not used, even when the SAN names no mailbox:
        # name constraints apply to it only without a SAN (RFC 5280 §4.2.1.10), so it could evade them.
        out = [
            n.value for n in san if isinstance(n, x509.RFC822Name) and n.value.isascii() and "@" in n.value
        ]
        return (*out, *smtp_utf8_mailboxes(san))
    try:
        attrs = certificate.subject.get_attributes_for_oid(NameOID.EMAIL_ADDRESS)
    except ValueError:
        return ()
    return tuple(str(a.value) for a in attrs if isinstance(a.value, str) and "@" in a.value)


def smtp_utf8_mailboxes(names: x509.SubjectAlternativeName | x509.GeneralNames) -> tuple[str, ...]:
    """The SmtpUTF8Mailbox values among ``names`` (RFC 8398); undecodable ones are left out."""
    out = []
    for name in names:
        if isinstance(name, x509.OtherName) and name.type_id == SMTP_UTF8_MAILBOX:
            value = _utf8_mailbox(name.value)
            if value is not None:
                out.append(value)
    return tuple(out)


def eai_name_constraints_problem(path: tuple[x509.Certificate, ...]) -> str | None:
    """Why the SmtpUTF8Mailbox names of ``path[0]`` break an rfc822Name constraint of a CA, or None.

    RFC 8398 §6 applies rfc822Name constraints to SmtpUTF8Mailbox names; pyhanko-certvalidator checks
    otherName values only against otherName constraints, so this completes it. ``path`` runs from the
    leaf to the anchor; the constraints of the CA certificates between them count (RFC 5280 takes none
    from the anchor). A mailbox-form constraint matches the same mailbox; a host matches that domain; a
    constraint starting with a dot matches the domains below it.
    """
    try:
        san = path[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    mailboxes = smtp_utf8_mailboxes(san)
    if not mailboxes:
        return None
    for ca in path[1:-1]:
        try:
            nc = ca.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        except ValueError:
            return "a CA certificate has unreadable name constraints"
        permitted = [n.value for n in nc.permitted_subtrees or () if isinstance(n, x509.RFC822Name)]
        excluded = [n.value for n in nc.excluded_subtrees or () if isinstance(n, x509.RFC822Name)]
        for mailbox in mailboxes:
            inside = any(_in_subtree(mailbox, c) for c in permitted)
            if (permitted and not inside) or any(_in_subtree(mailbox, c) for c in excluded):
                return f"the address {mailbox} is outside the name constraints of a CA of the path"
    return None


def _in_subtree(mailbox: str, constraint: str) -> bool:
    if "@" in constraint:
        return email_matches(mailbox, constraint)
    domain = _domain_key(mailbox.rpartition("@")[2])
    base = _domain_key(constraint.lstrip("."))
    if domain is None or base is None:
        return False
    if constraint.startswith("."):
        return domain.endswith("." + base)
    return domain == base


def _utf8_mailbox(der: bytes) -> str | None:
    try:
        value = asn1_core.UTF8String.load(der, strict=True).native
    except Exception:  # asn1crypto raises many types on malformed input: not a usable mailbox
        return None
    return value if isinstance(value, str) and "@" in value else None


def check_email_argument(email: object) -> str:
    """``email`` if it is a plain address ``local@domain``; raises PkiError otherwise."""
    if not isinstance(email, str):
        raise PkiError(f"the e-mail address must be a str, not {type(email).__name__}")
    local, sep, domain = email.rpartition("@")
    if (
        not sep
        or not local
        or not domain
        or len(email) > _MAX_ADDRESS
        or any(c.isspace() or ord(c) < 0x20 or c in "<>," for c in email)
    ):
        raise PkiError(f"{email!r} is not a plain e-mail address (local@domain)")
    return email


def email_matches(wanted: str, named: str) -> bool:
    """True when the address ``wanted`` is the address ``named`` (a certificate's).

    The local parts must be equal (after Unicode NFC normalisation); the domains are compared
    case-insensitively, an A-label matching its U-label.
    """
    w_local, _, w_domain = wanted.rpartition("@")
    n_local, _, n_domain = named.rpartition("@")
    if not w_local or not n_local:
        return False
    if unicodedata.normalize("NFC", w_local) != unicodedata.normalize("NFC", n_local):
        return False
    wd, nd = _domain_key(w_domain), _domain_key(n_domain)
    return wd is not None and wd == nd


def _domain_key(domain: str) -> str | None:
    """A comparison key for a domain: U-labels, lower case, NFC, without the final dot."""
    domain = domain.rstrip(".")
    if not domain:
        return None
    labels = []
    for label in domain.split("."):
        low = label.lower()
        if low.startswith("xn--"):
            try:
                low = low[4:].encode("ascii").decode("punycode")
            except (UnicodeError, ValueError):
                return None  # a broken A-label matches nothing
        labels.append(unicodedata.normalize("NFC", low.lower()))
    return ".".join(labels)
