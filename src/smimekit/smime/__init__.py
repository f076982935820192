"""S/MIME (RFC 8551): sign, verify, encrypt, decrypt, compress and open whole messages.

The recipes that join the MIME engine (:mod:`smimekit.mime`), the CMS layer (:mod:`smimekit.cms`) and path
validation (:mod:`smimekit.pki`). Pure: time and trust are parameters, nothing touches the network.

- :func:`sign` — clear-signed ``multipart/signed`` or opaque ``signed-data``, over the canonical content;
  :func:`sign_to` writes the signed message to a stream.
- :func:`verify` — every signature, over the bytes as received: :class:`VerificationReport`.
- :func:`encrypt` / :func:`decrypt` — ``authEnveloped-data`` (AES-GCM, ChaCha20-Poly1305) or
  ``enveloped-data`` (AES-CBC); :func:`encrypt_to` writes the encrypted message to a stream.
- :func:`compress` / :func:`decompress` — ``compressed-data`` (RFC 3274).
- :func:`open` — unwrap every layer: :class:`OpenResult`.

Everything but compression streams: memory does not grow with the message. Messages that these functions
return are parsed from a private temporary file when they are large; close them (or use ``with``).
"""

from smimekit.smime.diagnose import diagnose
from smimekit.smime.envelope import compress, decompress, decrypt, encrypt, encrypt_to
from smimekit.smime.kinds import SmimeKind, kind_of
from smimekit.smime.report import (
    CertificateSummary,
    DecryptionInfo,
    LayerKind,
    LayerReport,
    OpenResult,
    PathVerdict,
    RevocationVerdict,
    SignatureReport,
    TrustVerdict,
    VerificationReport,
)
from smimekit.smime.sign import micalg, sign, sign_to
from smimekit.smime.unwrap import open_message
from smimekit.smime.verify import verify

open = open_message  # smimekit.smime.open reads as the verb it is

__all__ = [
    "CertificateSummary",
    "DecryptionInfo",
    "LayerKind",
    "LayerReport",
    "OpenResult",
    "PathVerdict",
    "RevocationVerdict",
    "SignatureReport",
    "SmimeKind",
    "TrustVerdict",
    "VerificationReport",
    "compress",
    "decompress",
    "decrypt",
    "diagnose",
    "encrypt",
    "encrypt_to",
    "kind_of",
    "micalg",
    "open",
    "open_message",
    "sign",
    "sign_to",
    "verify",
]
