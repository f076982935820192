"""Who an encrypted message is for: the recipients its RecipientInfos name, read without decrypting.

A program that keeps its keys in a store (``smimekit decrypt`` with no key given, the gateway) looks
these identifiers up to find the one private key that can open the message, instead of trying every key
it holds. Only what is public is read: the issuer and serial number or the subject key identifier of
each key transport and key agreement recipient; KEK and password recipients are counted, not named.

The encrypted layers reachable without decrypting are the message itself and, through
``multipart/signed``, its signed first part (encrypt-then-sign). An encrypted layer inside an opaque
``signed-data`` or inside another encrypted layer is found only by unwrapping it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from asn1crypto import x509 as asn1_x509
from cryptography import x509

from smimekit.cms import _der
from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms._envasn1 import RecipientInfos
from smimekit.cms.enveloped import _parse as _parse_envelope
from smimekit.errors import CmsFormatError, NotSmimeError, UsageError
from smimekit.mime import Entity
from smimekit.smime import _mime
from smimekit.smime._mime import CmsKind
from smimekit.smime.envelope import layer_kind

__all__ = [
    "MAX_RECIPIENTS",
    "RecipientId",
    "RecipientKind",
    "encrypted_layers",
    "message_recipients",
    "read_recipient_infos",
]

#: A message naming more recipients than this is refused rather than read (a hostile fan-out).
MAX_RECIPIENTS = 10_000
#: How deep ``multipart/signed`` layers are followed when looking for the encrypted one.
MAX_SIGNED_DEPTH = 8
_NAME_ERRORS: tuple[type[BaseException], ...] = (ValueError, *PARSE_ERRORS)


class RecipientKind(enum.Enum):
    """How a RecipientInfo carries the content-encryption key."""

    KEY_TRANSPORT = "ktri"
    KEY_AGREEMENT = "kari"
    KEK = "kekri"
    PASSWORD = "pwri"
    OTHER = "ori"


@dataclass(frozen=True)
class RecipientId:
    """One recipient a message names: by ``issuer`` and ``serial``, or by ``subject_key_identifier``
    (key transport and key agreement), or by neither (KEK, password and other recipients)."""

    kind: RecipientKind
    issuer: x509.Name | None = None
    serial: int | None = None
    subject_key_identifier: bytes | None = None
    issuer_der: bytes | None = None
    """The issuer exactly as the message encodes it."""

    def names(self, certificate: x509.Certificate) -> bool:
        """True when this identifier names ``certificate``."""
        if self.serial is not None:
            if certificate.serial_number != self.serial:
                return False
            if self.issuer_der is not None and certificate.issuer.public_bytes() == self.issuer_der:
                return True
            return self.issuer is not None and certificate.issuer == self.issuer
        if self.subject_key_identifier is not None:
            try:
                ski = certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            except (x509.ExtensionNotFound, ValueError):
                return False
            return bool(ski.digest == self.subject_key_identifier)
        return False

    def describe(self) -> str:
        """A sentence fragment naming the recipient, for messages."""
        what = {
            RecipientKind.KEY_TRANSPORT: "key transport to",
            RecipientKind.KEY_AGREEMENT: "key agreement to",
        }.get(self.kind)
        if what is None:
            return {RecipientKind.KEK: "a KEK", RecipientKind.PASSWORD: "a password"}.get(
                self.kind, "another kind of recipient"
            )
        if self.serial is not None:
            issuer = _name(self.issuer) if self.issuer is not None else "an unreadable issuer"
            return f"{what} serial {self.serial:#x} of {issuer}"
        assert self.subject_key_identifier is not None
        return f"{what} key identifier {self.subject_key_identifier.hex()}"


def _name(name: x509.Name) -> str:
    try:
        return name.rfc4514_string()
    except ValueError:
        return "(an unreadable name)"


def read_recipient_infos(infos_der: bytes) -> tuple[RecipientId, ...]:
    """The recipients in the DER of a RecipientInfos SET. Raises CmsFormatError when it is malformed."""
    try:
        infos = RecipientInfos.load(infos_der, strict=True)
        if len(infos) > MAX_RECIPIENTS:
            raise CmsFormatError(f"the message names more than {MAX_RECIPIENTS} recipients")
        out: list[RecipientId] = []
        for info in infos:
            out.extend(_ids(str(info.name), info.chosen))
        return tuple(out)
    except PARSE_ERRORS as exc:  # asn1crypto parses lazily: malformed fields surface while in use
        raise CmsFormatError(f"cannot parse the recipient infos: {exc}") from exc


def _ids(kind: str, info: Any) -> Iterator[RecipientId]:
    if kind == "ktri":
        yield _rid(RecipientKind.KEY_TRANSPORT, info["rid"])
    elif kind == "kari":
        for rek in info["recipient_encrypted_keys"]:
            yield _rid(RecipientKind.KEY_AGREEMENT, rek["rid"])
    elif kind in ("kekri", "pwri"):
        yield RecipientId(RecipientKind(kind))
    else:
        yield RecipientId(RecipientKind.OTHER)


def _rid(kind: RecipientKind, rid: Any) -> RecipientId:
    """A RecipientIdentifier (ktri) or KeyAgreeRecipientIdentifier (kari) as a RecipientId."""
    if rid.name == "issuer_and_serial_number":
        ias = rid.chosen
        issuer_der = bytes(ias["issuer"].dump())
        return RecipientId(
            kind,
            issuer=_name_from_der(issuer_der),
            serial=int(ias["serial_number"].native),
            issuer_der=issuer_der,
        )
    ski = rid.chosen["subject_key_identifier"] if rid.name == "r_key_id" else rid.chosen
    return RecipientId(kind, subject_key_identifier=bytes(ski.native))


def _name_from_der(der: bytes) -> x509.Name | None:
    """The Name in ``der`` as a cryptography Name, or None when an attribute cannot be expressed as one
    (the identifier then names no certificate). The string types are kept where cryptography allows,
    so that the Name's DER is ``der`` itself and a store indexing issuers by DER finds it; otherwise it
    is still equal by value to a certificate's issuer."""
    try:
        parsed = asn1_x509.Name.load(der, strict=True)
        exact: list[x509.RelativeDistinguishedName] = []
        plain: list[x509.RelativeDistinguishedName] = []
        for rdn in parsed.chosen:
            exact_attributes, plain_attributes = [], []
            for ava in rdn:
                value = ava["value"]
                text = value.native
                if not isinstance(text, str):
                    return None
                oid = x509.ObjectIdentifier(ava["type"].dotted)
                plain_attributes.append(x509.NameAttribute(oid, text))
                exact_attributes.append(_typed_attribute(oid, text, value))
            exact.append(x509.RelativeDistinguishedName(exact_attributes))
            plain.append(x509.RelativeDistinguishedName(plain_attributes))
        name = x509.Name(exact)
        return name if name.public_bytes() == der else x509.Name(plain)
    except _NAME_ERRORS:
        return None


def _typed_attribute(oid: x509.ObjectIdentifier, text: str, value: Any) -> x509.NameAttribute[str]:
    """A NameAttribute that keeps the ASN.1 string type of ``value`` (cryptography's ``_type``)."""
    chosen = getattr(value, "chosen", value)
    kind = _STRING_TYPES.get(getattr(chosen, "tag", -1))
    if kind is None:
        return x509.NameAttribute(oid, text)
    return x509.NameAttribute(oid, text, _type=kind)


try:  # the ASN.1 string types cryptography can encode a name attribute with (a private enum of its own)
    from cryptography.x509.name import _ASN1Type

    _STRING_TYPES: dict[int, Any] = {t.value: t for t in _ASN1Type}
except ImportError:  # pragma: no cover - names then match by value only
    _STRING_TYPES = {}


def encrypted_layers(message: Entity) -> Iterator[Entity]:
    """The encrypted entities reachable without decrypting: ``message`` itself when it is enveloped or
    authEnveloped data, else the first part of each ``multipart/signed`` going down (at most a few)."""
    current = message
    for _ in range(MAX_SIGNED_DEPTH):
        kind = layer_kind(current)
        if kind in (CmsKind.ENVELOPED, CmsKind.AUTH_ENVELOPED):
            yield current
            return
        if not _mime.is_smime_signed_multipart(current) or not current.children:
            return
        current = current.children[0]


def message_recipients(message: Entity) -> tuple[RecipientId, ...]:
    """The recipients named by the outermost encrypted layer of ``message`` (see :func:`encrypted_layers`).

    Raises NotSmimeError when no encrypted layer can be reached without decrypting, CmsFormatError when
    its CMS is malformed, UsageError when ``message`` is not a parsed entity.
    """
    if not isinstance(message, Entity):
        raise UsageError("message_recipients() takes a parsed Message (smimekit.mime.parse)")
    layer = next(encrypted_layers(message), None)
    if layer is None:
        raise NotSmimeError("encrypted")
    with _mime.cms_stream(layer) as data:
        stream = _der.forward(data)
        try:
            try:
                envelope = _parse_envelope(_der.BerReader(stream))
            except PARSE_ERRORS as exc:
                raise CmsFormatError(f"cannot parse the enveloped data: {exc}") from exc
        finally:
            if stream is not data:
                stream.close()
    return read_recipient_infos(envelope.infos)
