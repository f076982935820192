"""Small typed helpers around asn1crypto, which ships without type hints.

Everything that touches an asn1crypto object and returns a plain Python value goes through here, so the
rest of the package stays typed. Parsing errors of any kind become :class:`CmsFormatError`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from asn1crypto import algos, cms, core, tsp, x509

from smimekit.errors import CmsFormatError

T = TypeVar("T")

# What asn1crypto, cryptography and the standard library raise on malformed input.
PARSE_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    OverflowError,
    UnicodeError,
    RecursionError,
)

Asn1 = Any  # an asn1crypto value; kept as one alias so its uses are easy to find


class RawEncapsulatedContentInfo(core.Sequence):  # type: ignore[misc]
    """EncapsulatedContentInfo whose eContent is always an OCTET STRING, whatever its type says.

    asn1crypto would parse a nested eContent (e.g. enveloped-data) as that structure; CMS wraps every
    eContent in an OCTET STRING, so we read it as such.
    """

    _fields = [  # noqa: RUF012  (asn1crypto schema)
        ("content_type", cms.ContentType),
        ("content", core.OctetString, {"explicit": 0, "optional": True}),
    ]


def guarded(what: str, fn: Callable[[], T]) -> T:
    """Run ``fn``; turn any parsing exception into CmsFormatError("<what>: <detail>")."""
    try:
        return fn()
    except CmsFormatError:
        raise
    except PARSE_ERRORS as exc:
        raise CmsFormatError(f"{what}: {exc}") from exc


def load(spec: Any, data: bytes, what: str) -> Asn1:
    """Parse ``data`` strictly (no trailing bytes) as ``spec``; raises CmsFormatError."""

    def _load() -> Asn1:
        value = spec.load(data, strict=True)
        value.native  # noqa: B018  (forces a full parse so that errors surface here)
        return value

    return guarded(f"cannot parse {what}", _load)


def load_shallow(spec: Any, data: bytes, what: str) -> Asn1:
    """Parse the outer structure of ``data`` strictly as ``spec``; children are parsed on access."""
    return guarded(f"cannot parse {what}", lambda: spec.load(data, strict=True))


def oid(value: Asn1) -> str:
    """Dotted form of an ObjectIdentifier value."""
    return str(value.dotted)


def dump(value: Asn1) -> bytes:
    """The encoding of ``value`` (the original bytes when it was parsed and not modified)."""
    return bytes(value.dump())


def contents(value: Asn1) -> bytes:
    """The content octets of ``value`` as they were read."""
    raw = value.contents
    return b"" if raw is None else bytes(raw)


def octets(value: Asn1) -> bytes:
    """The value of an OCTET STRING, with constructed (chunked BER) forms merged."""
    return bytes(value.__bytes__())


def integer(value: Asn1) -> int:
    """The value of an INTEGER (also one with named values, such as a trailerField)."""
    raw = contents(value)
    if not raw:
        raise CmsFormatError("an INTEGER has no content octets")
    return int.from_bytes(raw, "big", signed=True)


def is_present(value: Asn1) -> bool:
    """False for an absent OPTIONAL field (asn1crypto's Void)."""
    return not isinstance(value, core.Void)


def time_value(value: Asn1) -> dt.datetime:
    """A UTCTime / GeneralizedTime / Time choice as an aware datetime."""
    native = value.native
    if not isinstance(native, dt.datetime):
        raise CmsFormatError(f"not a time value: {native!r}")
    if native.tzinfo is None:
        native = native.replace(tzinfo=dt.UTC)
    return native


def algorithm_params(value: Asn1) -> bytes | None:
    """DER of the parameters of an AlgorithmIdentifier, None when absent or NULL."""
    params = value["parameters"]
    if not is_present(params) or isinstance(params, core.Null):
        return None
    raw = dump(params)
    return None if raw == b"\x05\x00" else raw


def set_of_der(encodings: list[bytes], tag: int = 0x31) -> bytes:
    """DER ``SET OF`` (or an IMPLICIT-tagged one) from encoded elements, sorted as DER requires."""
    return tlv(tag, b"".join(sorted(encodings)))


def tlv(tag: int, body: bytes) -> bytes:
    """One DER element: a single tag octet, the definite length, the body."""
    return bytes([tag]) + der_length(len(body)) + body


def header(tag: int, length: int) -> bytes:
    """The identifier and length octets of a DER element whose body is ``length`` bytes long."""
    return bytes([tag]) + der_length(length)


def der_length(n: int) -> bytes:
    """DER length octets for ``n``."""
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def signed_attrs_to_sign(raw_contents: bytes) -> bytes:
    """RFC 5652 §5.4: the signature covers the attributes re-tagged from IMPLICIT [0] to SET OF (0x31)."""
    return b"\x31" + der_length(len(raw_contents)) + raw_contents


def issuer_and_serial(issuer_der: bytes, serial: int) -> Asn1:
    """An IssuerAndSerialNumber value."""
    return cms.IssuerAndSerialNumber({"issuer": x509.Name.load(issuer_der), "serial_number": serial})


def names_equal(a_der: bytes, b_der: bytes) -> bool:
    """RFC 5280 §7.1 comparison of two DER Names; False when either does not parse."""
    try:
        return bool(x509.Name.load(a_der) == x509.Name.load(b_der))
    except PARSE_ERRORS:
        return False


def algorithm_identifier_der(dotted: str, params_der: bytes | None = None) -> bytes:
    """DER AlgorithmIdentifier with the given OID and optional DER parameters, written as given."""
    body = bytes(core.ObjectIdentifier(dotted).dump()) + (params_der or b"")
    return b"\x30" + der_length(len(body)) + body


__all__ = [
    "PARSE_ERRORS",
    "Asn1",
    "RawEncapsulatedContentInfo",
    "algorithm_identifier_der",
    "algorithm_params",
    "algos",
    "cms",
    "contents",
    "core",
    "der_length",
    "dump",
    "guarded",
    "header",
    "integer",
    "is_present",
    "issuer_and_serial",
    "load",
    "load_shallow",
    "names_equal",
    "octets",
    "oid",
    "set_of_der",
    "signed_attrs_to_sign",
    "time_value",
    "tlv",
    "tsp",
    "x509",
]
