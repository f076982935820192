"""What S/MIME structure a MIME entity is, from its headers and the first bytes of its body.

:func:`kind_of` is the public face of the detection that :func:`~smimekit.smime.verify`,
:func:`~smimekit.smime.decrypt` and :func:`~smimekit.smime.open` use, for callers that route mail by it
(the gateway: sign what is not signed, leave alone what the sender encrypted, verify what is signed).

Because "the sender encrypted it" exempts a message from encryption, an encrypted kind is reported only
for a body whose whole EnvelopedData or AuthEnvelopedData structure parses (recipient infos included);
anything less counts as no S/MIME structure at all, that is as plaintext.
"""

from __future__ import annotations

import enum

from smimekit.cms import _der
from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms._envasn1 import AlgorithmIdentifier
from smimekit.cms.enveloped import _parse as _parse_envelope
from smimekit.cms.enveloped import _parse_tail
from smimekit.errors import CmsFormatError, MimeError
from smimekit.mime import Entity
from smimekit.smime._mime import CmsKind, cms_kind, cms_stream, is_pkcs7_mime, is_smime_signed_multipart

__all__ = ["SmimeKind", "kind_of"]


class SmimeKind(enum.Enum):
    """An S/MIME structure; the value is the MIME type or the RFC 8551 ``smime-type`` it is known by."""

    CLEAR_SIGNED = "multipart/signed"
    """``multipart/signed`` with a PKCS#7 signature (not PGP/MIME)."""
    SIGNED_DATA = "signed-data"
    """``application/pkcs7-mime`` holding CMS SignedData (opaque signing)."""
    ENVELOPED = "enveloped-data"
    """``application/pkcs7-mime`` holding CMS EnvelopedData (AES-CBC and older)."""
    AUTH_ENVELOPED = "authEnveloped-data"
    """``application/pkcs7-mime`` holding CMS AuthEnvelopedData (AES-GCM, ChaCha20-Poly1305)."""
    COMPRESSED = "compressed-data"
    """``application/pkcs7-mime`` holding CMS CompressedData (RFC 3274)."""

    @property
    def signed(self) -> bool:
        """Clear-signed or opaque-signed."""
        return self in (SmimeKind.CLEAR_SIGNED, SmimeKind.SIGNED_DATA)

    @property
    def encrypted(self) -> bool:
        """Enveloped or auth-enveloped."""
        return self in (SmimeKind.ENVELOPED, SmimeKind.AUTH_ENVELOPED)


_NOT_AN_ENVELOPE: tuple[type[BaseException], ...] = (CmsFormatError, MimeError, *PARSE_ERRORS)
_BY_CMS_KIND = {
    CmsKind.SIGNED: SmimeKind.SIGNED_DATA,
    CmsKind.ENVELOPED: SmimeKind.ENVELOPED,
    CmsKind.AUTH_ENVELOPED: SmimeKind.AUTH_ENVELOPED,
    CmsKind.COMPRESSED: SmimeKind.COMPRESSED,
}


def kind_of(entity: Entity) -> SmimeKind | None:
    """The S/MIME structure ``entity`` itself is (its parts are not looked into), or None when it is none.

    A ``pkcs7-mime`` body is judged by the content type OID of its CMS ContentInfo (the ``smime-type``
    parameter is only a hint, used when the body is empty); a body that is not CMS gives None. Signed and
    compressed data are judged by the first 64 decoded bytes; enveloped and auth-enveloped data by their
    whole structure, read once without decrypting (ContentInfo, EnvelopedData, at least one readable
    RecipientInfo, the EncryptedContentInfo with its encrypted content, nothing after it): a body that
    only starts like one gives None. Raises MimeError when the start of the body cannot be decoded.
    """
    if is_smime_signed_multipart(entity):
        return SmimeKind.CLEAR_SIGNED
    if is_pkcs7_mime(entity):
        found = cms_kind(entity)
        if found is None:
            return None
        kind = _BY_CMS_KIND[found]
        return kind if not kind.encrypted or _is_envelope(entity) else None
    return None


def _is_envelope(entity: Entity) -> bool:
    """Whether the pkcs7 body of ``entity`` is a well-formed (Auth)EnvelopedData naming recipients."""
    # imported here: smimekit.recipients imports this package
    from smimekit.recipients import read_recipient_infos

    try:
        with cms_stream(entity) as data:
            stream = _der.forward(data)
            try:
                reader = _der.BerReader(stream)
                envelope = _parse_envelope(reader)
                if not AlgorithmIdentifier.load(envelope.algorithm, strict=True)["algorithm"].dotted:
                    return False
                reader.skip_content(envelope.content)
                _parse_tail(reader, envelope)
            finally:
                if stream is not data:
                    stream.close()
        return bool(read_recipient_infos(envelope.infos))
    except _NOT_AN_ENVELOPE:
        return False
