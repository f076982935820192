"""Published test vectors: RFC 4134, pyca/cryptography, OpenSSL's test data, draft-ireland-examples-cms.

The vectors come from ../shared/vectors (see each MANIFEST.txt) and, for X25519 with HKDF, ChaCha20-Poly1305 and
RSA-OAEP to the RFC 9216 keys, from draft-ireland-examples-cms: github.com/davidi67/examples-cms.
Its PEM files of the two AuthEnvelopedData samples (commit ac350e775d6bc5d48c91e85056d9dcf2bc874830,
pem-encoded/authEnveloped*.pem) are malformed BER — the mac sits inside EncryptedContentInfo — so the DER is
rebuilt here field by field from the published dumps asn1dumps/authEnvelopedForDanaX25519HKDF.asn1.txt and
asn1dumps/authEnvelopedForBobChaCha20Poly1305.asn1.txt (commit 2fbf230db8f58835b4eba8cdeb3508ac76c5f989);
the rebuilt lengths equal the dumps' (350 and 561 bytes) and the authentication tags verify, so every byte is
the published one. The key is RFC 9216's; the plaintext is RFC 4134's ExContent.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

from smimekit.cms import _der as d
from smimekit.cms.algorithms import ContentCipher
from smimekit.cms.enveloped import decrypt
from smimekit.cms.recipients import RecipientType
from smimekit.errors import CmsFormatError, LegacyAlgorithmError, UnsupportedAlgorithmError

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "vectors"
if not VECTORS.is_dir():
    VECTORS = Path("/work/shared/vectors")
pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason="shared vectors are not available")
EX_CONTENT = b"This is some sample content."

# ------------------------------------------------------------------ rebuilt from the published dumps


def H(s):
    return bytes.fromhex(s.replace(" ", "").replace("\n", ""))


def name(cn):
    def rdn(o, v):
        return d.tlv(0x31, d.seq(d.oid(o), d.tlv(0x13, v.encode())))

    return d.seq(rdn("2.5.4.10", "IETF"), rdn("2.5.4.11", "LAMPS WG"), rdn("2.5.4.3", cn))


def aed(ri, alg, ct, mac):
    eci = d.seq(d.oid("1.2.840.113549.1.7.1"), alg, d.implicit_primitive(0, ct))
    body = d.seq(d.integer(0), d.tlv(0x31, ri), eci, d.octets(mac))
    return d.seq(d.oid("1.2.840.113549.1.9.16.1.23"), d.explicit(0, body))


def dana_x25519_hkdf():
    ias = d.seq(
        name("Sample LAMPS Ed25519 Certification Authority"),
        d.tlv(0x02, H("0E4B0A36A9EFBA9C9A3B68248E521DC0DEF3A7")),
    )
    orig = d.explicit(
        0,
        d.tlv(
            0xA1,
            d.algorithm("1.3.101.110")
            + d.tlv(0x03, b"\0" + H("BCCD393928413227 86AC048EF35C36E0 D54030DAF8AD17AA F45432202BEB0448")),
        ),
    )
    kea = d.algorithm("1.2.840.113549.1.9.16.3.19", d.algorithm("2.16.840.1.101.3.4.1.45"))
    reks = d.seq(d.seq(ias, d.octets(H("27BC5CE0A386CE1383A945B1BD690071838B1E47262AE8B5"))))
    kari = d.tlv(0xA1, d.integer(3) + orig + kea + reks)
    alg = d.algorithm("2.16.840.1.101.3.4.1.6", d.seq(d.octets(H("9103A09D9492122713B12C35")), d.integer(16)))
    return aed(
        kari,
        alg,
        H("30783E5773966EBA262C2BB120011E18B3C385B333F76D9746189DA1"),
        H("14934D82E7912130EE79B989C54CF66B"),
    )


def bob_chacha20_poly1305():
    ias = d.seq(
        name("Sample LAMPS RSA Certification Authority"),
        d.tlv(0x02, H("307C47400F86263A1C62D2EB832F96C0D78694")),
    )
    sha256 = d.algorithm("2.16.840.1.101.3.4.2.1", b"\x05\x00")
    oaep = d.algorithm(
        "1.2.840.113549.1.1.7",
        d.seq(d.explicit(0, sha256), d.explicit(1, d.algorithm("1.2.840.113549.1.1.8", sha256))),
    )
    ek = H("""
        50007A36808F01D83E076E17F940070D7592CA97A9D1B870E33B2284335515CF
        9A60FBD51B8D7249415178 52DDE42B4D3F6FBA4545CCB3C1EAA3FEA707DBC50C
        DC02CF505EC4F1474AA6CC1E369A43F31400D5DC8422BEB8196DF8E94602230F
        DB457D91FAACB7A7BB38500575F848C2C1ED0119B4D822B16947D54E803B9547
        28F2F20D31F9218DAA92BB989D215C4C99E7D32B20859B796C965B46D501065F
        F9C32D1DA6DC6339272A2242F1C2CD08E52E2C6CCB84CF9450C65472369C2557
        44A6B64E7E874A812A847C7140F6100F18F80F95322FA63D82DDE9BD6F26020C
        524147CB31AB43CE1D156469C338AADD07CD17ED963E36B6BB55FB0D1D6A7F70""")
    ktri = d.seq(d.integer(0), ias, oaep, d.octets(ek))
    alg = d.algorithm("1.2.840.113549.1.9.16.3.18", d.octets(H("02EB7F27AE4FB26E201A6E13")))
    return aed(
        ktri,
        alg,
        H("B6C2FF032C07BC4BA675E4201A60AA0D2CD61A5FBC3FDF71677A9776"),
        H("54056BE8F1652C316E2F5A9DE9F1D015"),
    )


# draft-ireland-examples-cms, pem-encoded/encryptedForBobAndDana.pem (commit aff3f0c9c0438747c344a382aa110d7f9e0722b8):
# AES-128-CBC to Bob (RSA-OAEP-SHA-256) and Dana (X25519, dhSinglePass-stdDH-sha256kdf-scheme).
BOB_AND_DANA = """
MIIC/AYJKoZIhvcNAQcDoIIC7TCCAukCAQIxggKUMIIBswIBADBsMFUxDTALBgNVBAoTBElF
VEYxETAPBgNVBAsTCExBTVBTIFdHMTEwLwYDVQQDEyhTYW1wbGUgTEFNUFMgUlNBIENlcnRp
ZmljYXRpb24gQXV0aG9yaXR5AhMwfEdAD4YmOhxi0uuDL5bA14aUMDwGCSqGSIb3DQEBBzAv
oA8wDQYJYIZIAWUDBAIBBQChHDAaBgkqhkiG9w0BAQgwDQYJYIZIAWUDBAIBBQAEggEALDDJ
dkhYTd2gvCcPXRxP1HZl4nXdm5DfiNI/Mxtr5ZPNzT0JgEpMrT1h9KzX1AgRqZhgk/3NFMmf
gDWY/Aj45vGwZn1nLBZY+B+CkoHWlI/c6HYEzbf3+MT507/GDaKxwrMQrMEvA6Mfi/O91bdW
OOxKWj2mnkpe6oGPVQqfugI2sTjQyD91R3at1+GudB3pWoMDc2Bdbje+FIsyEfgbWSGlomPu
357TyfVbhUMq6IuF5/IjttXUBk8Xs4FmYk67gDCpnh09qfKD0zPYQub/oT4II7Pu7V1+idk6
88Px/mDbqzlqAdwhX8AvqbcqPBgwovAH6C8xX9yQhWC82Na2/qGB2gIBA6AsoSowBQYDK2Vu
AyEA/EGr+owykPVD3bNWB2IcUTkBmP7WgK2gLl0e9U3U4jEwFQYGK4EEAQsBMAsGCWCGSAFl
AwQBBTCBjzCBjDBwMFkxDTALBgNVBAoTBElFVEYxETAPBgNVBAsTCExBTVBTIFdHMTUwMwYD
VQQDEyxTYW1wbGUgTEFNUFMgRWQyNTUxOSBDZXJ0aWZpY2F0aW9uIEF1dGhvcml0eQITDksK
NqnvupyaO2gkjlIdwN7zpwQYzl4eD55lNGGBxp4MTiZvVfKVizQ8uOHRMEwGCSqGSIb3DQEH
ATAdBglghkgBZQMEAQIEECMOtGHAZPlhLNH26hlNk8eAIMwMTIvUoLW+PCDFKf23ON4OzxbZ
jYcUMzPR8WCTFLvy
"""


def _rfc9216(who: str) -> tuple[object, x509.Certificate]:
    base = VECTORS / "rfc9216"
    key = load_pem_private_key((base / f"{who}.decrypt.key").read_bytes(), None)
    return key, x509.load_pem_x509_certificate((base / f"{who}.encrypt.crt").read_bytes())


def _pem(text: str) -> bytes:
    return base64.b64decode(
        "".join(line for line in text.splitlines() if line and not line.startswith("-----"))
    )


def test_x25519_hkdf_aes128_gcm_to_dana() -> None:
    key, cert = _rfc9216("dana")
    result = decrypt(dana_x25519_hkdf(), key=key, certificate=cert)
    assert result.plaintext == EX_CONTENT
    assert result.cipher is ContentCipher.AES128_GCM
    assert result.recipient_type is RecipientType.KEY_AGREEMENT


def test_chacha20_poly1305_rsa_oaep_to_bob() -> None:
    key, cert = _rfc9216("bob")
    result = decrypt(bob_chacha20_poly1305(), key=key, certificate=cert)
    assert result.plaintext == EX_CONTENT
    assert result.cipher is ContentCipher.CHACHA20_POLY1305


@pytest.mark.parametrize("who", ["bob", "dana"])
def test_aes_cbc_to_bob_and_dana(who) -> None:
    key, cert = _rfc9216(who)
    assert decrypt(_pem(BOB_AND_DANA), key=key, certificate=cert).plaintext == EX_CONTENT
    assert decrypt(_pem(BOB_AND_DANA), key=key).plaintext == EX_CONTENT


def _bob4134() -> tuple[object, x509.Certificate]:
    base = VECTORS / "rfc4134"
    key = load_der_private_key((base / "BobPrivRSAEncrypt.pri").read_bytes(), None)
    return key, x509.load_der_x509_certificate((base / "BobRSASignByCarl.cer").read_bytes())


def test_rfc4134_5_1_3des_needs_the_legacy_switch() -> None:
    key, cert = _bob4134()
    data = (VECTORS / "rfc4134" / "5.1.bin").read_bytes()
    with pytest.raises(LegacyAlgorithmError, match=r"3DES-CBC .* legacy_ciphers=True"):
        decrypt(data, key=key, certificate=cert)
    result = decrypt(data, key=key, certificate=cert, legacy_ciphers=True)
    assert result.plaintext == EX_CONTENT
    assert result.legacy


def test_rfc4134_5_2_rc2_needs_the_legacy_switch_and_then_says_why_it_cannot() -> None:
    # RFC 4134 5.2 uses RC2 with 40 effective key bits; cryptography offers only 128-bit RC2.
    key, cert = _bob4134()
    data = (VECTORS / "rfc4134" / "5.2.bin").read_bytes()
    with pytest.raises(LegacyAlgorithmError):
        decrypt(data, key=key, certificate=cert)
    with pytest.raises(UnsupportedAlgorithmError, match="40 effective key bits"):
        decrypt(data, key=key, certificate=cert, legacy_ciphers=True)


def test_rfc4134_5_3_smime_message_body() -> None:
    key, cert = _bob4134()
    text = (VECTORS / "rfc4134" / "5.3.eml").read_bytes().replace(b"\r\n", b"\n")
    body = base64.b64decode(text.split(b"\n\n", 1)[1])
    assert decrypt(body, key=key, certificate=cert, legacy_ciphers=True).plaintext.startswith(
        b"This is some sample"
    )


def _pyca() -> tuple[object, x509.Certificate]:
    base = VECTORS / "pyca-cryptography-vectors" / "x509-custom-ca"
    key = load_pem_private_key((base / "rsa_key.pem").read_bytes(), None)
    return key, x509.load_pem_x509_certificate((base / "rsa_ca.pem").read_bytes())


@pytest.mark.parametrize(
    ("name", "plaintext", "legacy"),
    [
        ("enveloped-rsa-oaep.pem", b"Hello, world!", False),
        ("enveloped-triple-des.pem", b"Hello, World!\r\n", True),
    ],
)
def test_pyca_vectors(name, plaintext, legacy) -> None:
    key, cert = _pyca()
    data = _pem((VECTORS / "pyca-cryptography-vectors" / "pkcs7" / name).read_text())
    assert decrypt(data, key=key, certificate=cert, legacy_ciphers=legacy).plaintext == plaintext


def test_pyca_enveloped_without_content_is_rejected() -> None:
    key, cert = _pyca()
    data = (VECTORS / "pyca-cryptography-vectors" / "pkcs7" / "enveloped-no-content.der").read_bytes()
    with pytest.raises(CmsFormatError, match="no encrypted content"):
        decrypt(data, key=key, certificate=cert)


def test_openssl_1_1_1_ecdh_3des_message() -> None:
    base = VECTORS / "openssl-smime" / "test"
    pem = (base / "smime-certs" / "smec3.pem").read_bytes()
    key = load_pem_private_key(pem[pem.index(b"-----BEGIN PRIVATE KEY") :], None)
    cert = x509.load_pem_x509_certificate(pem)
    mime = (base / "recipes" / "80-test_cms_data" / "ciphertext_from_1_1_1.cms").read_bytes()
    data = base64.b64decode(mime.split(b"\n\n", 1)[1])
    with pytest.raises(LegacyAlgorithmError):
        decrypt(data, key=key, certificate=cert)
    assert (
        decrypt(data, key=key, certificate=cert, legacy_ciphers=True).plaintext
        == (base / "smcont.txt").read_bytes()
    )
