"""The one allow-list of algorithms smimekit uses in CMS, with their OIDs and their cryptography calls.

Anything not listed here is refused with :class:`UnsupportedAlgorithmError`. Weak algorithms that are still
accepted for verification (SHA-1, DSA) are marked so that reports can flag them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from smimekit.cms import _asn1
from smimekit.errors import UnsupportedAlgorithmError

# --- digests and signatures

#: Private keys smimekit can sign with.
SigningKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
#: Public keys smimekit can verify with (DSA only for legacy messages).
VerifyingKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | dsa.DSAPublicKey
)

MIN_RSA_SIGNING_BITS = 2048
#: RSA keys below this size are still verified but reported as weak.
WEAK_RSA_BITS = 2048

_REJECTED_DIGESTS = {
    "1.2.840.113549.2.5": "MD5",
    "1.2.840.113549.2.4": "MD4",
    "1.2.840.113549.2.2": "MD2",
}


class DigestAlgorithm(enum.Enum):
    """Message digests. SHA-1 is accepted for verification only and reported as weak."""

    SHA1 = "1.3.14.3.2.26"
    SHA256 = "2.16.840.1.101.3.4.2.1"
    SHA384 = "2.16.840.1.101.3.4.2.2"
    SHA512 = "2.16.840.1.101.3.4.2.3"

    @property
    def oid(self) -> str:
        return self.value

    @property
    def label(self) -> str:
        """Human name, e.g. ``SHA-256``."""
        return f"SHA-{self.name[3:]}"

    @property
    def weak(self) -> bool:
        return self is DigestAlgorithm.SHA1

    @property
    def allowed_for_signing(self) -> bool:
        return not self.weak

    @property
    def micalg(self) -> str:
        """The RFC 8551 §3.5.3.2 ``micalg`` name (``sha-256``)."""
        return self.label.lower()

    def hash(self) -> hashes.HashAlgorithm:
        """A fresh cryptography hash object."""
        return _HASHES[self]()

    def identifier_der(self) -> bytes:
        """DER AlgorithmIdentifier, parameters absent (RFC 5754 §2)."""
        return _asn1.algorithm_identifier_der(self.oid)

    @classmethod
    def from_oid(cls, dotted: str) -> DigestAlgorithm:
        """The digest named by ``dotted``; raises UnsupportedAlgorithmError for MD5 and unknown OIDs."""
        if dotted in _REJECTED_DIGESTS:
            raise UnsupportedAlgorithmError(
                dotted, _REJECTED_DIGESTS[dotted], reason="is broken and rejected"
            )
        try:
            return cls(dotted)
        except ValueError:
            raise UnsupportedAlgorithmError(dotted, reason="is not an allowed digest") from None


_HASHES: dict[DigestAlgorithm, type[hashes.HashAlgorithm]] = {
    DigestAlgorithm.SHA1: hashes.SHA1,
    DigestAlgorithm.SHA256: hashes.SHA256,
    DigestAlgorithm.SHA384: hashes.SHA384,
    DigestAlgorithm.SHA512: hashes.SHA512,
}


class SignatureScheme(enum.Enum):
    """How a signature is made. DSA is verification-only (legacy, RFC 4134 samples)."""

    RSA_PKCS1V15 = "RSA PKCS#1 v1.5"
    RSA_PSS = "RSA-PSS"
    ECDSA = "ECDSA"
    ED25519 = "Ed25519"
    DSA = "DSA"

    @property
    def legacy(self) -> bool:
        return self is SignatureScheme.DSA


class Curve(enum.Enum):
    """The elliptic curves allowed for ECDSA (by their cryptography names)."""

    P256 = "secp256r1"
    P384 = "secp384r1"
    P521 = "secp521r1"


# signatureAlgorithm OIDs -> (scheme, digest implied by the OID or None when the digest comes from the
# signerInfo's digestAlgorithm).
OID_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
OID_RSASSA_PSS = "1.2.840.113549.1.1.10"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_EC_PUBLIC_KEY = "1.2.840.10045.2.1"
OID_ED25519 = "1.3.101.112"
OID_DSA = "1.2.840.10040.4.1"

_SIGNATURE_OIDS: dict[str, tuple[SignatureScheme, DigestAlgorithm | None]] = {
    OID_RSA_ENCRYPTION: (SignatureScheme.RSA_PKCS1V15, None),
    "1.2.840.113549.1.1.5": (SignatureScheme.RSA_PKCS1V15, DigestAlgorithm.SHA1),
    "1.2.840.113549.1.1.11": (SignatureScheme.RSA_PKCS1V15, DigestAlgorithm.SHA256),
    "1.2.840.113549.1.1.12": (SignatureScheme.RSA_PKCS1V15, DigestAlgorithm.SHA384),
    "1.2.840.113549.1.1.13": (SignatureScheme.RSA_PKCS1V15, DigestAlgorithm.SHA512),
    OID_RSASSA_PSS: (SignatureScheme.RSA_PSS, None),
    OID_EC_PUBLIC_KEY: (SignatureScheme.ECDSA, None),
    "1.2.840.10045.4.1": (SignatureScheme.ECDSA, DigestAlgorithm.SHA1),
    "1.2.840.10045.4.3.2": (SignatureScheme.ECDSA, DigestAlgorithm.SHA256),
    "1.2.840.10045.4.3.3": (SignatureScheme.ECDSA, DigestAlgorithm.SHA384),
    "1.2.840.10045.4.3.4": (SignatureScheme.ECDSA, DigestAlgorithm.SHA512),
    OID_ED25519: (SignatureScheme.ED25519, None),
    OID_DSA: (SignatureScheme.DSA, None),
    "1.2.840.10040.4.3": (SignatureScheme.DSA, DigestAlgorithm.SHA1),
    "2.16.840.1.101.3.4.3.2": (SignatureScheme.DSA, DigestAlgorithm.SHA256),
}

_ECDSA_OID_FOR: dict[DigestAlgorithm, str] = {
    d: o for o, (s, d) in _SIGNATURE_OIDS.items() if s is SignatureScheme.ECDSA and d is not None
}


@dataclass(frozen=True)
class SignatureAlgorithm:
    """A signature algorithm as written in a SignerInfo, bound to its digest.

    ``digest`` is the hash the signature is computed with (for Ed25519 the signerInfo's digest, which
    RFC 8419 requires to be SHA-512; the signature itself is pure Ed25519). ``mgf_digest`` and
    ``salt_length`` are set for RSA-PSS only.
    """

    scheme: SignatureScheme
    digest: DigestAlgorithm
    oid: str
    mgf_digest: DigestAlgorithm | None = None
    salt_length: int | None = None

    @property
    def label(self) -> str:
        if self.scheme is SignatureScheme.ED25519:
            return "Ed25519"
        return f"{self.scheme.value} with {self.digest.label}"

    @property
    def weak(self) -> bool:
        return self.digest.weak or (self.mgf_digest is not None and self.mgf_digest.weak)

    def identifier_der(self) -> bytes:
        """DER AlgorithmIdentifier as smimekit writes it (NULL parameters for RSA, RFC 4056 PSS parameters)."""
        params: bytes | None = None
        if self.scheme is SignatureScheme.RSA_PKCS1V15:
            params = b"\x05\x00"
        elif self.scheme is SignatureScheme.RSA_PSS:
            mgf = self.mgf_digest or self.digest
            pss = _asn1.algos.RSASSAPSSParams(
                {
                    "hash_algorithm": {"algorithm": self.digest.oid},
                    "mask_gen_algorithm": {"algorithm": OID_MGF1, "parameters": {"algorithm": mgf.oid}},
                    "salt_length": self.salt_length,
                }
            )
            params = _asn1.dump(pss)
        return _asn1.algorithm_identifier_der(self.oid, params)

    def sign(self, key: SigningKey, data: bytes) -> bytes:
        """Sign ``data`` (the DER of the signed attributes); raises UnsupportedAlgorithmError on a key mismatch."""
        if self.scheme is SignatureScheme.ED25519 and isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        if self.scheme is SignatureScheme.ECDSA and isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(self.digest.hash()))
        if isinstance(key, rsa.RSAPrivateKey) and self.scheme in (
            SignatureScheme.RSA_PKCS1V15,
            SignatureScheme.RSA_PSS,
        ):
            return key.sign(data, self._rsa_padding(), self.digest.hash())
        raise UnsupportedAlgorithmError(self.oid, self.label, reason="does not fit the signer's key")

    def verify(self, key: VerifyingKey, signature: bytes, data: bytes, *, prehashed: bool = False) -> None:
        """Check ``signature`` over ``data`` (or over the digest ``data`` when ``prehashed``).

        Raises cryptography's InvalidSignature when the maths does not hold, UnsupportedAlgorithmError when
        the key does not fit the algorithm.
        """
        algo: hashes.HashAlgorithm | Prehashed = (
            Prehashed(self.digest.hash()) if prehashed else self.digest.hash()
        )
        if self.scheme is SignatureScheme.ED25519 and isinstance(key, ed25519.Ed25519PublicKey):
            if prehashed:
                raise UnsupportedAlgorithmError(self.oid, self.label, reason="cannot verify a digest")
            key.verify(signature, data)
        elif self.scheme is SignatureScheme.ECDSA and isinstance(key, ec.EllipticCurvePublicKey):
            curve_of(key)
            key.verify(signature, data, ec.ECDSA(algo))
        elif self.scheme is SignatureScheme.DSA and isinstance(key, dsa.DSAPublicKey):
            key.verify(signature, data, algo)
        elif isinstance(key, rsa.RSAPublicKey) and self.scheme in (
            SignatureScheme.RSA_PKCS1V15,
            SignatureScheme.RSA_PSS,
        ):
            key.verify(signature, data, self._rsa_padding(), algo)
        else:
            raise UnsupportedAlgorithmError(self.oid, self.label, reason="does not fit the certificate's key")

    def _rsa_padding(self) -> padding.AsymmetricPadding:
        if self.scheme is SignatureScheme.RSA_PSS:
            mgf = self.mgf_digest or self.digest
            salt = self.digest.hash().digest_size if self.salt_length is None else self.salt_length
            return padding.PSS(mgf=padding.MGF1(mgf.hash()), salt_length=salt)
        return padding.PKCS1v15()


def curve_of(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> Curve:
    """The allowed curve of an EC key; raises UnsupportedAlgorithmError for any other curve."""
    try:
        return Curve(key.curve.name)
    except ValueError:
        raise UnsupportedAlgorithmError(key.curve.name, reason="is not an allowed ECDSA curve") from None


def signing_algorithm(scheme: SignatureScheme, digest: DigestAlgorithm) -> SignatureAlgorithm:
    """The algorithm smimekit writes for ``scheme`` with ``digest``; raises UnsupportedAlgorithmError."""
    if not digest.allowed_for_signing:
        raise UnsupportedAlgorithmError(digest.oid, digest.label, reason="is not allowed for signing")
    if scheme is SignatureScheme.RSA_PKCS1V15:
        # rsaEncryption, as OpenSSL, Thunderbird and Outlook write it (RFC 3370 §3.2).
        return SignatureAlgorithm(scheme, digest, OID_RSA_ENCRYPTION)
    if scheme is SignatureScheme.RSA_PSS:
        size = digest.hash().digest_size
        return SignatureAlgorithm(scheme, digest, OID_RSASSA_PSS, mgf_digest=digest, salt_length=size)
    if scheme is SignatureScheme.ECDSA:
        return SignatureAlgorithm(scheme, digest, _ECDSA_OID_FOR[digest])
    if scheme is SignatureScheme.ED25519:
        if digest is not DigestAlgorithm.SHA512:
            raise UnsupportedAlgorithmError(
                digest.oid, digest.label, reason="cannot be used with Ed25519 (RFC 8419 requires SHA-512)"
            )
        return SignatureAlgorithm(scheme, digest, OID_ED25519)
    raise UnsupportedAlgorithmError(scheme.value, reason="is not allowed for signing")


def scheme_for_key(key: SigningKey | VerifyingKey) -> SignatureScheme:
    """The default scheme for a key: PKCS#1 v1.5 for RSA, ECDSA, Ed25519, DSA."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return SignatureScheme.RSA_PKCS1V15
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return SignatureScheme.ECDSA
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return SignatureScheme.ED25519
    if isinstance(key, dsa.DSAPublicKey):
        return SignatureScheme.DSA
    raise UnsupportedAlgorithmError(type(key).__name__, reason="is not a supported key type")


@dataclass(frozen=True)
class PssParameters:
    """RSASSA-PSS-params (RFC 4055 §3.1) as read from a message."""

    digest: DigestAlgorithm
    mgf_digest: DigestAlgorithm
    salt_length: int
    trailer_field: int = 1

    @classmethod
    def from_der(cls, der: bytes) -> PssParameters:
        """Read RSASSA-PSS-params; raises CmsFormatError or UnsupportedAlgorithmError (e.g. MGF other than MGF1)."""
        params = _asn1.load(_asn1.algos.RSASSAPSSParams, der, "RSASSA-PSS parameters")
        mgf = params["mask_gen_algorithm"]
        if _asn1.oid(mgf["algorithm"]) != OID_MGF1:
            raise UnsupportedAlgorithmError(
                _asn1.oid(mgf["algorithm"]), reason="is not an allowed mask generation function"
            )
        return cls(
            digest=DigestAlgorithm.from_oid(_asn1.oid(params["hash_algorithm"]["algorithm"])),
            mgf_digest=DigestAlgorithm.from_oid(_asn1.oid(mgf["parameters"]["algorithm"])),
            salt_length=_asn1.integer(params["salt_length"]),
            trailer_field=_asn1.integer(params["trailer_field"]),
        )


def signature_algorithm_from(
    dotted: str, digest: DigestAlgorithm, pss: PssParameters | None
) -> SignatureAlgorithm:
    """Interpret a SignerInfo's signatureAlgorithm together with its digestAlgorithm.

    Raises UnsupportedAlgorithmError for unknown OIDs and for inconsistent combinations (an OID that
    implies another digest, PSS without parameters or with another hash, Ed25519 without SHA-512).
    """
    try:
        scheme, implied = _SIGNATURE_OIDS[dotted]
    except KeyError:
        raise UnsupportedAlgorithmError(dotted, reason="is not an allowed signature algorithm") from None
    if implied is not None and implied is not digest:
        raise UnsupportedAlgorithmError(
            dotted, reason=f"implies {implied.label} but the signer's digest is {digest.label}"
        )
    if scheme is SignatureScheme.RSA_PSS:
        if pss is None:
            raise UnsupportedAlgorithmError(dotted, "RSA-PSS", reason="needs RSASSA-PSS-params")
        if pss.digest is not digest:
            raise UnsupportedAlgorithmError(
                dotted,
                "RSA-PSS",
                reason=f"hashes with {pss.digest.label} but the signer's digest is {digest.label}",
            )
        if pss.trailer_field != 1:
            raise UnsupportedAlgorithmError(dotted, "RSA-PSS", reason="has a trailer field other than 1")
        return SignatureAlgorithm(scheme, digest, dotted, pss.mgf_digest, pss.salt_length)
    if scheme is SignatureScheme.ED25519 and digest is not DigestAlgorithm.SHA512:
        raise UnsupportedAlgorithmError(dotted, "Ed25519", reason=f"is used with {digest.label}, not SHA-512")
    return SignatureAlgorithm(scheme, digest, dotted)


#: Signature algorithms and digests this package signs with, in order of preference (RFC 8551 §2.5.2).
SIGNING_DIGESTS: tuple[DigestAlgorithm, ...] = (
    DigestAlgorithm.SHA256,
    DigestAlgorithm.SHA384,
    DigestAlgorithm.SHA512,
)


# --- content encryption and key management
#
# Content ciphers, key transport, key agreement, key derivation and key wrap for EnvelopedData and
# AuthEnvelopedData. The enums are the public names; the tables map object identifiers to what the
# encryption layer needs to drive pyca/cryptography.

import enum as _enum  # noqa: E402  (this section is kept self-contained)
from dataclasses import dataclass as _dataclass  # noqa: E402

from cryptography.hazmat.primitives import hashes as _hashes  # noqa: E402


class ContentCipher(_enum.Enum):
    """A content-encryption algorithm; the value is its object identifier. The default is AES256_GCM."""

    AES128_GCM = "2.16.840.1.101.3.4.1.6"
    AES192_GCM = "2.16.840.1.101.3.4.1.26"
    AES256_GCM = "2.16.840.1.101.3.4.1.46"
    AES128_CBC = "2.16.840.1.101.3.4.1.2"
    AES192_CBC = "2.16.840.1.101.3.4.1.22"
    AES256_CBC = "2.16.840.1.101.3.4.1.42"
    CHACHA20_POLY1305 = "1.2.840.113549.1.9.16.3.18"
    DES_EDE3_CBC = "1.2.840.113549.3.7"  # legacy: decryption only
    RC2_CBC = "1.2.840.113549.3.2"  # legacy: decryption only

    @property
    def key_size(self) -> int:
        """Key length in bytes (RC2: the 128-bit key that OpenSSL and RFC 4134 use)."""
        return _CIPHER_KEY_SIZES[self]

    @property
    def aead(self) -> bool:
        """True for the AuthEnvelopedData ciphers (GCM, ChaCha20-Poly1305)."""
        return self in _AEAD_CIPHERS

    @property
    def legacy(self) -> bool:
        """True for ciphers allowed only for decryption, behind ``legacy_ciphers=True``."""
        return self in (ContentCipher.DES_EDE3_CBC, ContentCipher.RC2_CBC)

    @property
    def label(self) -> str:
        """A human-facing name such as ``AES-256-GCM``."""
        return _CIPHER_LABELS[self]


_AEAD_CIPHERS = frozenset(
    {
        ContentCipher.AES128_GCM,
        ContentCipher.AES192_GCM,
        ContentCipher.AES256_GCM,
        ContentCipher.CHACHA20_POLY1305,
    }
)
_CIPHER_KEY_SIZES = {
    ContentCipher.AES128_GCM: 16,
    ContentCipher.AES192_GCM: 24,
    ContentCipher.AES256_GCM: 32,
    ContentCipher.AES128_CBC: 16,
    ContentCipher.AES192_CBC: 24,
    ContentCipher.AES256_CBC: 32,
    ContentCipher.CHACHA20_POLY1305: 32,
    ContentCipher.DES_EDE3_CBC: 24,
    ContentCipher.RC2_CBC: 16,
}
_CIPHER_LABELS = {
    ContentCipher.AES128_GCM: "AES-128-GCM",
    ContentCipher.AES192_GCM: "AES-192-GCM",
    ContentCipher.AES256_GCM: "AES-256-GCM",
    ContentCipher.AES128_CBC: "AES-128-CBC",
    ContentCipher.AES192_CBC: "AES-192-CBC",
    ContentCipher.AES256_CBC: "AES-256-CBC",
    ContentCipher.CHACHA20_POLY1305: "ChaCha20-Poly1305",
    ContentCipher.DES_EDE3_CBC: "3DES-CBC",
    ContentCipher.RC2_CBC: "RC2-CBC",
}
DEFAULT_CONTENT_CIPHER = ContentCipher.AES256_GCM


class KeyTransport(_enum.Enum):
    """RSA key transport for KeyTransRecipientInfo. The default is RSA_OAEP (SHA-256, MGF1-SHA-256)."""

    RSA_OAEP = "1.2.840.113549.1.1.7"
    RSA_PKCS1V15 = "1.2.840.113549.1.1.1"


DEFAULT_KEY_TRANSPORT = KeyTransport.RSA_OAEP


class KeyAgreementKdf(_enum.Enum):
    """The key-agreement scheme of a KeyAgreeRecipientInfo: ECDH or X25519/X448 with a KDF (RFC 5753, 8418)."""

    X963_SHA256 = "1.3.132.1.11.1"  # dhSinglePass-stdDH-sha256kdf-scheme
    X963_SHA384 = "1.3.132.1.11.2"
    X963_SHA512 = "1.3.132.1.11.3"
    HKDF_SHA256 = "1.2.840.113549.1.9.16.3.19"  # dhSinglePass-stdDH-hkdf-sha256-scheme (RFC 8418)
    HKDF_SHA384 = "1.2.840.113549.1.9.16.3.20"
    HKDF_SHA512 = "1.2.840.113549.1.9.16.3.21"


@_dataclass(frozen=True)
class KdfSpec:
    """How a key-agreement scheme derives its key-encryption key: ``kind`` x963 or hkdf, with ``hash``."""

    kind: str
    hash: _hashes.HashAlgorithm


# Accepted on decryption. The cofactor schemes equal the standard ones on P-256/P-384 (cofactor 1).
KEY_AGREEMENT_SCHEMES: dict[str, KdfSpec] = {
    "1.3.133.16.840.63.0.2": KdfSpec("x963", _hashes.SHA1()),  # stdDH-sha1kdf, OpenSSL's default
    "1.3.132.1.11.0": KdfSpec("x963", _hashes.SHA224()),
    KeyAgreementKdf.X963_SHA256.value: KdfSpec("x963", _hashes.SHA256()),
    KeyAgreementKdf.X963_SHA384.value: KdfSpec("x963", _hashes.SHA384()),
    KeyAgreementKdf.X963_SHA512.value: KdfSpec("x963", _hashes.SHA512()),
    "1.3.133.16.840.63.0.3": KdfSpec("x963", _hashes.SHA1()),  # cofactorDH-sha1kdf
    "1.3.132.1.14.0": KdfSpec("x963", _hashes.SHA224()),
    "1.3.132.1.14.1": KdfSpec("x963", _hashes.SHA256()),
    "1.3.132.1.14.2": KdfSpec("x963", _hashes.SHA384()),
    "1.3.132.1.14.3": KdfSpec("x963", _hashes.SHA512()),
    KeyAgreementKdf.HKDF_SHA256.value: KdfSpec("hkdf", _hashes.SHA256()),
    KeyAgreementKdf.HKDF_SHA384.value: KdfSpec("hkdf", _hashes.SHA384()),
    KeyAgreementKdf.HKDF_SHA512.value: KdfSpec("hkdf", _hashes.SHA512()),
}

# AES key wrap (RFC 3394) and with padding (RFC 5649): OID -> (KEK length in bytes, padded).
KEY_WRAP_ALGORITHMS: dict[str, tuple[int, bool]] = {
    "2.16.840.1.101.3.4.1.5": (16, False),
    "2.16.840.1.101.3.4.1.25": (24, False),
    "2.16.840.1.101.3.4.1.45": (32, False),
    "2.16.840.1.101.3.4.1.8": (16, True),
    "2.16.840.1.101.3.4.1.28": (24, True),
    "2.16.840.1.101.3.4.1.48": (32, True),
}
DES3_KEY_WRAP_OID = "1.2.840.113549.1.9.16.3.6"  # id-alg-CMS3DESwrap (RFC 3217): legacy, decryption only
KEY_WRAP_BY_SIZE = {
    16: "2.16.840.1.101.3.4.1.5",
    24: "2.16.840.1.101.3.4.1.25",
    32: "2.16.840.1.101.3.4.1.45",
}

# Hash functions allowed in RSA-OAEP parameters.
OAEP_HASHES: dict[str, _hashes.HashAlgorithm] = {
    "1.3.14.3.2.26": _hashes.SHA1(),  # RFC 3560's default parameters, still common
    "2.16.840.1.101.3.4.2.1": _hashes.SHA256(),
    "2.16.840.1.101.3.4.2.2": _hashes.SHA384(),
    "2.16.840.1.101.3.4.2.3": _hashes.SHA512(),
}
OAEP_SHA256_OID = "2.16.840.1.101.3.4.2.1"
MGF1_OID = "1.2.840.113549.1.1.8"
P_SPECIFIED_OID = "1.2.840.113549.1.1.9"

PBKDF2_OID = "1.2.840.113549.1.5.12"
PWRI_KEK_OID = "1.2.840.113549.1.9.16.3.9"  # id-alg-PWRI-KEK (RFC 3211)
PBKDF2_PRFS: dict[str, _hashes.HashAlgorithm] = {
    "1.2.840.113549.2.7": _hashes.SHA1(),  # hmacWithSHA1, the PKCS#5 default
    "1.2.840.113549.2.9": _hashes.SHA256(),
    "1.2.840.113549.2.10": _hashes.SHA384(),
    "1.2.840.113549.2.11": _hashes.SHA512(),
}
PBKDF2_PRF_SHA256 = "1.2.840.113549.2.9"
DEFAULT_PBKDF2_ITERATIONS = 600_000  # OWASP 2023 for PBKDF2-HMAC-SHA256

ZLIB_COMPRESSION_OID = "1.2.840.113549.1.9.16.3.8"  # RFC 3274
