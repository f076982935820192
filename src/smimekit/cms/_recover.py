"""Recovering the content-encryption key from the RecipientInfos of a message.

The certificate (or, without one, the key itself) selects the RecipientInfos to try. What is public — which
recipients a message names, which algorithms it uses — may be reported precisely (RecipientNotFoundError,
UnsupportedAlgorithmError). What depends on the secret never is: a failed RSA PKCS#1 v1.5 decryption goes on
with a random key of the right length (RFC 3218), so that the failure shows only when the content does not
decrypt, and every other failure raises the one DecryptionError.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Any

from asn1crypto import core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.decrepit.ciphers import algorithms as decrepit
from cryptography.hazmat.primitives import hashes, keywrap
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, x448, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from smimekit.cms._asn1 import PARSE_ERRORS
from smimekit.cms._envasn1 import AlgorithmIdentifier, Pbkdf2Params, RecipientInfos, RsaesOaepParams
from smimekit.cms.algorithms import (
    DES3_KEY_WRAP_OID,
    KEY_AGREEMENT_SCHEMES,
    KEY_WRAP_ALGORITHMS,
    MGF1_OID,
    OAEP_HASHES,
    P_SPECIFIED_OID,
    PBKDF2_OID,
    PBKDF2_PRFS,
    PWRI_KEK_OID,
    KeyTransport,
)
from smimekit.cms.recipients import (
    AES_CBC_SIZES,
    EC_PUBLIC_KEY_OID,
    X448_OID,
    X25519_OID,
    PrivateKey,
    RecipientType,
    _derive_kek,
    _pwri_unwrap,
)
from smimekit.errors import (
    CmsFormatError,
    DecryptionError,
    LegacyAlgorithmError,
    RecipientNotFoundError,
    UnsupportedAlgorithmError,
    UsageError,
)

_SKIPPABLE: tuple[type[BaseException], ...] = (UnsupportedAlgorithmError, *PARSE_ERRORS)
MAX_PBKDF2_ITERATIONS = 10_000_000  # hostile input must not buy a multi-minute key derivation

Asn1 = Any


@dataclass(frozen=True)
class Secret:
    """What the caller holds: a private key (with or without its certificate), a password, or a KEK."""

    key: PrivateKey | None = None
    certificate: x509.Certificate | None = None
    password: bytes | None = None
    kek: bytes | None = None
    kek_id: bytes | None = None


@dataclass(frozen=True)
class RecoveredKey:
    cek: bytes
    recipient_type: RecipientType


def recover_cek(infos_der: bytes, cek_size: int, secret: Secret, *, legacy: bool = False) -> RecoveredKey:
    """The CEK for ``secret``; raises RecipientNotFoundError, UnsupportedAlgorithmError, DecryptionError."""
    try:
        infos = RecipientInfos.load(infos_der, strict=True)
        items: list[tuple[str, Asn1]] = [(str(ri.name), ri.chosen) for ri in infos]
        return _dispatch(items, cek_size, secret, legacy)
    except PARSE_ERRORS as exc:  # asn1crypto parses lazily: malformed fields surface while in use
        raise CmsFormatError(f"cannot parse the recipient infos: {exc}") from exc


def _dispatch(items: list[tuple[str, Asn1]], cek_size: int, secret: Secret, legacy: bool) -> RecoveredKey:
    if secret.password is not None:
        return _by_password(items, cek_size, secret.password)
    if secret.kek is not None:
        return _by_kek(items, cek_size, secret.kek, secret.kek_id)
    if isinstance(secret.key, rsa.RSAPrivateKey):
        return _by_rsa(items, cek_size, secret.key, secret.certificate)
    if isinstance(secret.key, ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey):
        return _by_agreement(items, cek_size, secret.key, secret.certificate, legacy)
    raise UsageError("decryption needs an RSA, EC, X25519 or X448 private key, a password or a KEK")


# ------------------------------------------------------------------------------------------ naming


def _names_cert(ias: Asn1, cert: x509.Certificate) -> bool:
    try:
        issuer = asn1_x509.Name.load(cert.issuer.public_bytes())
        return bool(int(ias["serial_number"].native) == cert.serial_number and ias["issuer"] == issuer)
    except PARSE_ERRORS:
        return False


def _cert_ski(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def _rid_names(rid: Asn1, cert: x509.Certificate) -> bool:
    """True when a RecipientIdentifier or KeyAgreeRecipientIdentifier names ``cert``."""
    if rid.name == "issuer_and_serial_number":
        return _names_cert(rid.chosen, cert)
    ski = rid.chosen["subject_key_identifier"] if rid.name == "r_key_id" else rid.chosen
    return _cert_ski(cert) == bytes(ski.native)


def _describe_rid(rid: Asn1) -> str:
    if rid.name == "issuer_and_serial_number":
        ias = rid.chosen
        return f"serial {int(ias['serial_number'].native):#x} of {ias['issuer'].human_friendly}"
    ski = rid.chosen["subject_key_identifier"] if rid.name == "r_key_id" else rid.chosen
    return f"key identifier {bytes(ski.native).hex()}"


def describe(items: list[tuple[str, Asn1]]) -> tuple[str, ...]:
    out: list[str] = []
    for name, ri in items:
        if name == "ktri":
            out.append(f"key transport to {_describe_rid(ri['rid'])}")
        elif name == "kari":
            out.extend(f"key agreement to {_describe_rid(r['rid'])}" for r in ri["recipient_encrypted_keys"])
        elif name == "kekri":
            out.append(f"KEK {bytes(ri['kekid']['key_identifier'].native).hex()}")
        elif name == "pwri":
            out.append("a password")
        else:
            out.append(f"other recipient type {ri['ori_type'].dotted}")
    return tuple(out)


def _cert_label(cert: x509.Certificate) -> str:
    return f"the certificate {cert.subject.rfc4514_string()} (serial {cert.serial_number:#x})"


# ------------------------------------------------------------------------------------------ key transport


def _oaep(params_der: bytes | None) -> padding.OAEP:
    """OAEP padding from RSAES-OAEP-params (absent fields: SHA-1, MGF1-SHA-1, empty label)."""
    hash_alg: hashes.HashAlgorithm = hashes.SHA1()
    mgf_hash: hashes.HashAlgorithm = hashes.SHA1()
    label = None
    if params_der is not None:
        p = RsaesOaepParams.load(params_der, strict=True)
        if p["hash_algorithm"].native is not None:
            hash_alg = _oaep_hash(p["hash_algorithm"]["algorithm"].dotted)
        if p["mask_gen_algorithm"].native is not None:
            mgf = p["mask_gen_algorithm"]
            if mgf["algorithm"].dotted != MGF1_OID:
                raise UnsupportedAlgorithmError(mgf["algorithm"].dotted, reason="is not an allowed OAEP mask")
            inner = AlgorithmIdentifier.load(mgf["parameters"].dump(), strict=True)
            mgf_hash = _oaep_hash(inner["algorithm"].dotted)
        if p["p_source_algorithm"].native is not None:
            src = p["p_source_algorithm"]
            if src["algorithm"].dotted != P_SPECIFIED_OID:
                raise UnsupportedAlgorithmError(
                    src["algorithm"].dotted, reason="is not an allowed OAEP label source"
                )
            label = bytes(core.OctetString.load(src["parameters"].dump()).native) or None
    return padding.OAEP(padding.MGF1(mgf_hash), hash_alg, label)


def _oaep_hash(dotted: str) -> hashes.HashAlgorithm:
    if dotted not in OAEP_HASHES:
        raise UnsupportedAlgorithmError(dotted, reason="is not an allowed OAEP hash")
    return OAEP_HASHES[dotted]


def _params(alg: Asn1) -> bytes | None:
    params = alg["parameters"]
    if isinstance(params, core.Void):
        return None
    raw = bytes(params.dump())
    return None if raw == b"\x05\x00" else raw


def _by_rsa(
    items: list[tuple[str, Asn1]], size: int, key: rsa.RSAPrivateKey, cert: x509.Certificate | None
) -> RecoveredKey:
    ktris = [ri for name, ri in items if name == "ktri"]
    if cert is not None:
        candidates = [ri for ri in ktris if _rid_names(ri["rid"], cert)]
        if not candidates:
            raise RecipientNotFoundError(_cert_label(cert), describe(items))
    else:
        modulus_bytes = (key.key_size + 7) // 8
        candidates = [ri for ri in ktris if len(ri["encrypted_key"].native) == modulus_bytes]
        if not candidates:
            raise RecipientNotFoundError(f"an RSA-{key.key_size} key", describe(items))
    pkcs1_tried = False
    for ri in candidates:
        dotted = ri["key_encryption_algorithm"]["algorithm"].dotted
        encrypted = bytes(ri["encrypted_key"].native)
        try:
            if dotted == KeyTransport.RSA_OAEP.value:
                pad: padding.AsymmetricPadding = _oaep(_params(ri["key_encryption_algorithm"]))
            elif dotted == KeyTransport.RSA_PKCS1V15.value:
                pad, pkcs1_tried = padding.PKCS1v15(), True
            else:
                raise UnsupportedAlgorithmError(dotted, reason="is not an allowed key transport")
        except _SKIPPABLE:
            if cert is not None:
                raise
            continue
        try:
            cek = key.decrypt(encrypted, pad)
        except ValueError:
            continue
        if len(cek) == size:
            return RecoveredKey(cek, RecipientType.KEY_TRANSPORT)
    if pkcs1_tried:  # RFC 3218: let the content decryption fail, not the key transport
        return RecoveredKey(os.urandom(size), RecipientType.KEY_TRANSPORT)
    raise DecryptionError()


# ------------------------------------------------------------------------------------------ key agreement

AgreementKey = ec.EllipticCurvePrivateKey | x25519.X25519PrivateKey | x448.X448PrivateKey


def _shared_secret(key: AgreementKey, originator: Asn1) -> bytes | None:
    """ECDH/X25519/X448 with the originator's ephemeral key; None when it does not fit our key."""
    if originator.name != "originator_key":
        return None
    okey = originator.chosen
    alg = okey["algorithm"]["algorithm"].dotted
    raw = bytes(okey["public_key"].contents or b"")
    if not raw or raw[0] != 0:
        return None
    point = raw[1:]
    try:
        if isinstance(key, x25519.X25519PrivateKey) and alg == X25519_OID:
            return key.exchange(x25519.X25519PublicKey.from_public_bytes(point))
        if isinstance(key, x448.X448PrivateKey) and alg == X448_OID:
            return key.exchange(x448.X448PublicKey.from_public_bytes(point))
        if isinstance(key, ec.EllipticCurvePrivateKey) and alg == EC_PUBLIC_KEY_OID:
            peer = ec.EllipticCurvePublicKey.from_encoded_point(key.curve, point)
            return key.exchange(ec.ECDH(), peer)
    except ValueError:
        return None
    return None


def _by_agreement(
    items: list[tuple[str, Asn1]], size: int, key: AgreementKey, cert: x509.Certificate | None, legacy: bool
) -> RecoveredKey:
    named = False
    for name, kari in items:
        if name != "kari":
            continue
        reks = list(kari["recipient_encrypted_keys"])
        targets = [r for r in reks if _rid_names(r["rid"], cert)] if cert is not None else reks
        if not targets:
            continue
        named = True
        alg = kari["key_encryption_algorithm"]
        scheme = alg["algorithm"].dotted
        wrap_der = _params(alg)
        try:
            if scheme not in KEY_AGREEMENT_SCHEMES:
                raise UnsupportedAlgorithmError(scheme, reason="is not an allowed key-agreement scheme")
            if wrap_der is None:
                raise CmsFormatError("the key-agreement algorithm names no key wrap")
            wrap_oid = AlgorithmIdentifier.load(wrap_der, strict=True)["algorithm"].dotted
            if wrap_oid == DES3_KEY_WRAP_OID and not legacy:
                raise LegacyAlgorithmError(wrap_oid, "3DES key wrap")
            if wrap_oid not in KEY_WRAP_ALGORITHMS and wrap_oid != DES3_KEY_WRAP_OID:
                raise UnsupportedAlgorithmError(wrap_oid, reason="is not an allowed key wrap")
        except (UnsupportedAlgorithmError, CmsFormatError):
            if cert is not None:
                raise
            continue
        z = _shared_secret(key, kari["originator"])
        if z is None:
            continue
        kek_size, padded = KEY_WRAP_ALGORITHMS.get(wrap_oid, (24, False))
        ukm = kari["ukm"].native
        kek = _derive_kek(scheme, z, wrap_der, kek_size, None if ukm is None else bytes(ukm))
        for rek in targets:
            wrapped = bytes(rek["encrypted_key"].native)
            if wrap_oid == DES3_KEY_WRAP_OID:
                cek = _des3_unwrap(kek, wrapped)
            else:
                cek = _unwrap(kek, wrapped, padded)
            if cek is not None and len(cek) == size:
                return RecoveredKey(cek, RecipientType.KEY_AGREEMENT)
    if cert is not None and not named:
        raise RecipientNotFoundError(_cert_label(cert), describe(items))
    raise DecryptionError()


def _unwrap(kek: bytes, wrapped: bytes, padded: bool) -> bytes | None:
    try:
        if padded:
            return keywrap.aes_key_unwrap_with_padding(kek, wrapped)
        return keywrap.aes_key_unwrap(kek, wrapped)
    except (keywrap.InvalidUnwrap, ValueError):
        return None


_DES3_WRAP_IV = bytes.fromhex("4adda22c79e82105")


def _des3_unwrap(kek: bytes, wrapped: bytes) -> bytes | None:
    """RFC 3217 §3.2 Triple-DES key unwrap (legacy: messages of OpenSSL 1.1.1 and older)."""
    if len(wrapped) != 40:
        return None

    def cbc_decrypt(iv: bytes, data: bytes) -> bytes:
        ctx = Cipher(decrepit.TripleDES(kek), modes.CBC(iv)).decryptor()
        return ctx.update(data) + ctx.finalize()

    temp2 = cbc_decrypt(_DES3_WRAP_IV, wrapped)[::-1]
    wkcks = cbc_decrypt(temp2[:8], temp2[8:])
    cek, cks = wkcks[:-8], wkcks[-8:]
    digest = hashes.Hash(hashes.SHA1())
    digest.update(cek)
    return cek if hmac.compare_digest(digest.finalize()[:8], cks) else None


# ------------------------------------------------------------------------------------------ KEK, password


def _by_kek(items: list[tuple[str, Asn1]], size: int, kek: bytes, kek_id: bytes | None) -> RecoveredKey:
    kekris = [ri for name, ri in items if name == "kekri"]
    if kek_id is not None:
        kekris = [ri for ri in kekris if bytes(ri["kekid"]["key_identifier"].native) == kek_id]
    if not kekris:
        wanted = "a KEK" if kek_id is None else f"the KEK {kek_id.hex()}"
        raise RecipientNotFoundError(wanted, describe(items))
    for ri in kekris:
        wrap_oid = ri["key_encryption_algorithm"]["algorithm"].dotted
        if wrap_oid not in KEY_WRAP_ALGORITHMS:
            if kek_id is not None:
                raise UnsupportedAlgorithmError(wrap_oid, reason="is not an allowed key wrap")
            continue
        kek_size, padded = KEY_WRAP_ALGORITHMS[wrap_oid]
        if kek_size != len(kek):
            continue
        cek = _unwrap(kek, bytes(ri["encrypted_key"].native), padded)
        if cek is not None and len(cek) == size:
            return RecoveredKey(cek, RecipientType.KEK)
    raise DecryptionError()


def _by_password(items: list[tuple[str, Asn1]], size: int, password: bytes) -> RecoveredKey:
    pwris = [ri for name, ri in items if name == "pwri"]
    if not pwris:
        raise RecipientNotFoundError("a password", describe(items))
    for ri in pwris:
        kdf = ri["key_derivation_algorithm"]
        if isinstance(kdf, core.Void) or kdf["algorithm"].dotted != PBKDF2_OID:
            dotted = "absent" if isinstance(kdf, core.Void) else kdf["algorithm"].dotted
            raise UnsupportedAlgorithmError(dotted, reason="is not an allowed password key derivation")
        kea = ri["key_encryption_algorithm"]
        if kea["algorithm"].dotted != PWRI_KEK_OID:
            raise UnsupportedAlgorithmError(
                kea["algorithm"].dotted, reason="is not an allowed password key wrap"
            )
        try:
            params = Pbkdf2Params.load(kdf["parameters"].dump(), strict=True)
            inner = AlgorithmIdentifier.load(kea["parameters"].dump(), strict=True)
            iv = bytes(core.OctetString.load(inner["parameters"].dump(), strict=True).native)
            salt, iterations = bytes(params["salt"].native), int(params["iteration_count"].native)
            prf_oid = (
                "1.2.840.113549.2.7" if params["prf"].native is None else params["prf"]["algorithm"].dotted
            )
            key_length = params["key_length"].native
        except PARSE_ERRORS as exc:
            raise CmsFormatError(f"cannot parse the password recipient: {exc}") from exc
        cipher_oid = inner["algorithm"].dotted
        if cipher_oid not in AES_CBC_SIZES:
            raise UnsupportedAlgorithmError(
                cipher_oid, reason="is not an allowed password key-encryption cipher"
            )
        if prf_oid not in PBKDF2_PRFS:
            raise UnsupportedAlgorithmError(prf_oid, reason="is not an allowed PBKDF2 function")
        kek_size = AES_CBC_SIZES[cipher_oid]
        if not 1 <= iterations <= MAX_PBKDF2_ITERATIONS or len(iv) != 16:
            raise CmsFormatError(f"bad password recipient parameters ({iterations} iterations)")
        if key_length is not None and int(key_length) != kek_size:
            raise CmsFormatError("the PBKDF2 key length does not fit the key-encryption cipher")
        kek = PBKDF2HMAC(PBKDF2_PRFS[prf_oid], kek_size, salt, iterations).derive(password)
        cek = _pwri_unwrap(kek, iv, bytes(ri["encrypted_key"].native))
        if cek is not None and len(cek) == size:
            return RecoveredKey(cek, RecipientType.PASSWORD)
    raise DecryptionError()
