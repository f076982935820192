"""CMS (RFC 5652) on asn1crypto and pyca/cryptography: pure, no I/O, no clock."""

from smimekit.cms.algorithms import (
    ContentCipher,
    Curve,
    DigestAlgorithm,
    KeyAgreementKdf,
    KeyTransport,
    SignatureAlgorithm,
    SignatureScheme,
)
from smimekit.cms.attributes import DEFAULT_SMIME_CAPABILITIES, SmimeCapability
from smimekit.cms.certs import SignerIdentifier
from smimekit.cms.compressed import compress, compress_to, decompress, decompress_to
from smimekit.cms.enveloped import DecryptResult, decrypt, encrypt, encrypt_to
from smimekit.cms.recipients import (
    KEKRecipient,
    KeyAgreeRecipient,
    KeyTransRecipient,
    PasswordRecipient,
    Recipient,
    RecipientType,
    certificate_recipient,
)
from smimekit.cms.signed import Signer, SignerIdentifierType, sign, sign_to
from smimekit.cms.verify import SignedDataReport, SignedDataVerifier, SignerReport, verify

__all__ = [
    "DEFAULT_SMIME_CAPABILITIES",
    "ContentCipher",
    "Curve",
    "DecryptResult",
    "DigestAlgorithm",
    "KEKRecipient",
    "KeyAgreeRecipient",
    "KeyAgreementKdf",
    "KeyTransRecipient",
    "KeyTransport",
    "PasswordRecipient",
    "Recipient",
    "RecipientType",
    "SignatureAlgorithm",
    "SignatureScheme",
    "SignedDataReport",
    "SignedDataVerifier",
    "Signer",
    "SignerIdentifier",
    "SignerIdentifierType",
    "SignerReport",
    "SmimeCapability",
    "certificate_recipient",
    "compress",
    "compress_to",
    "decompress",
    "decompress_to",
    "decrypt",
    "encrypt",
    "encrypt_to",
    "sign",
    "sign_to",
    "verify",
]
