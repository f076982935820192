"""What S/MIME structure a MIME entity is, from its headers and the first bytes of its body.

:func:`kind_of` is the public face of the detection that :func:`~smimekit.smime.verify`,
:func:`~smimekit.smime.decrypt` and :func:`~smimekit.smime.open` use, for callers that route mail by it
(the gateway: sign what is not signed, leave alone what the sender encrypted, verify what is signed).
"""

from __future__ import annotations

import enum

from smimekit.mime import Entity
from smimekit.smime._mime import CmsKind, cms_kind, is_pkcs7_mime, is_smime_signed_multipart

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


_BY_CMS_KIND = {
    CmsKind.SIGNED: SmimeKind.SIGNED_DATA,
    CmsKind.ENVELOPED: SmimeKind.ENVELOPED,
    CmsKind.AUTH_ENVELOPED: SmimeKind.AUTH_ENVELOPED,
    CmsKind.COMPRESSED: SmimeKind.COMPRESSED,
}


def kind_of(entity: Entity) -> SmimeKind | None:
    """The S/MIME structure ``entity`` itself is (its parts are not looked into), or None when it is none.

    A ``pkcs7-mime`` body is judged by the content type OID of its CMS ContentInfo (the ``smime-type``
    parameter is only a hint, used when the body is empty); a body that is not CMS gives None. Reads at
    most the first 64 decoded bytes of the body. Raises MimeError when the body cannot be decoded.
    """
    if is_smime_signed_multipart(entity):
        return SmimeKind.CLEAR_SIGNED
    if is_pkcs7_mime(entity):
        found = cms_kind(entity)
        return None if found is None else _BY_CMS_KIND[found]
    return None
