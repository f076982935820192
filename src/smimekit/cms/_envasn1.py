"""asn1crypto schemas for reading RecipientInfos, with every AlgorithmIdentifier kept generic.

asn1crypto's own RecipientInfo classes interpret algorithm parameters and originator keys by their OIDs and
know neither RFC 8418 nor RFC 3211 well; these schemas keep parameters as raw DER so that the allow-list in
``algorithms`` decides. They also hold the structures asn1crypto lacks (ECC-CMS-SharedInfo).
"""

from __future__ import annotations

from asn1crypto import cms, core


class AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012  (asn1crypto schema)
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class OriginatorPublicKey(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("algorithm", AlgorithmIdentifier),
        ("public_key", core.BitString),
    ]


class OriginatorIdentifierOrKey(core.Choice):  # type: ignore[misc]
    _alternatives = [  # noqa: RUF012
        ("issuer_and_serial_number", cms.IssuerAndSerialNumber),
        ("subject_key_identifier", core.OctetString, {"implicit": 0}),
        ("originator_key", OriginatorPublicKey, {"implicit": 1}),
    ]


class KeyTransRecipientInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("rid", cms.RecipientIdentifier),
        ("key_encryption_algorithm", AlgorithmIdentifier),
        ("encrypted_key", core.OctetString),
    ]


class KeyAgreeRecipientInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("originator", OriginatorIdentifierOrKey, {"explicit": 0}),
        ("ukm", core.OctetString, {"explicit": 1, "optional": True}),
        ("key_encryption_algorithm", AlgorithmIdentifier),
        ("recipient_encrypted_keys", cms.RecipientEncryptedKeys),
    ]


class KekRecipientInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("kekid", cms.KEKIdentifier),
        ("key_encryption_algorithm", AlgorithmIdentifier),
        ("encrypted_key", core.OctetString),
    ]


class PasswordRecipientInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("version", core.Integer),
        ("key_derivation_algorithm", AlgorithmIdentifier, {"implicit": 0, "optional": True}),
        ("key_encryption_algorithm", AlgorithmIdentifier),
        ("encrypted_key", core.OctetString),
    ]


class OtherRecipientInfo(core.Sequence):  # type: ignore[misc]
    _fields = [  # noqa: RUF012
        ("ori_type", core.ObjectIdentifier),
        ("ori_value", core.Any),
    ]


class RecipientInfo(core.Choice):  # type: ignore[misc]
    _alternatives = [  # noqa: RUF012
        ("ktri", KeyTransRecipientInfo),
        ("kari", KeyAgreeRecipientInfo, {"implicit": 1}),
        ("kekri", KekRecipientInfo, {"implicit": 2}),
        ("pwri", PasswordRecipientInfo, {"implicit": 3}),
        ("ori", OtherRecipientInfo, {"implicit": 4}),
    ]


class RecipientInfos(core.SetOf):  # type: ignore[misc]
    _child_spec = RecipientInfo


class Pbkdf2Params(core.Sequence):  # type: ignore[misc]
    """PBKDF2-params (RFC 8018) with the salt in its 'specified' form, the only one in use."""

    _fields = [  # noqa: RUF012
        ("salt", core.OctetString),
        ("iteration_count", core.Integer),
        ("key_length", core.Integer, {"optional": True}),
        ("prf", AlgorithmIdentifier, {"optional": True}),
    ]


class RsaesOaepParams(core.Sequence):  # type: ignore[misc]
    """RSAES-OAEP-params (RFC 8017) with generic algorithm identifiers; absent fields mean SHA-1."""

    _fields = [  # noqa: RUF012
        ("hash_algorithm", AlgorithmIdentifier, {"explicit": 0, "optional": True}),
        ("mask_gen_algorithm", AlgorithmIdentifier, {"explicit": 1, "optional": True}),
        ("p_source_algorithm", AlgorithmIdentifier, {"explicit": 2, "optional": True}),
    ]
