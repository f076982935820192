"""Opening a message layer by layer: sign-then-encrypt, encrypt-then-sign, triple wrap, compression."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509

from smimekit.cms.compressed import MAX_SIZE
from smimekit.cms.recipients import PrivateKey
from smimekit.errors import (
    DecryptionError,
    NotSmimeError,
    RecipientNotFoundError,
    SmimeFormatError,
    SmimeLayerLimitError,
    UsageError,
)
from smimekit.mime import Entity, Message
from smimekit.pki.result import RevocationMode
from smimekit.pki.revocation import RevocationFetcher
from smimekit.smime import _mime
from smimekit.smime._mime import CmsKind
from smimekit.smime.envelope import adopt_headers, decompress_layer, decrypt_layer, layer_kind
from smimekit.smime.report import DecryptionInfo, LayerKind, LayerReport, OpenResult
from smimekit.smime.verify import verify_found

__all__ = ["open_message"]

_LAYER_KINDS = {
    CmsKind.SIGNED: LayerKind.SIGNED,
    CmsKind.ENVELOPED: LayerKind.ENVELOPED,
    CmsKind.AUTH_ENVELOPED: LayerKind.AUTH_ENVELOPED,
    CmsKind.COMPRESSED: LayerKind.COMPRESSED,
}

Key = tuple[x509.Certificate | None, PrivateKey]


def open_message(
    message: Message,
    *,
    now: dt.datetime,
    keys: Sequence[Key] = (),
    anchors: Sequence[x509.Certificate] = (),
    intermediates: Sequence[x509.Certificate] = (),
    crls: Sequence[x509.CertificateRevocationList] = (),
    legacy_ciphers: bool = False,
    legacy_algorithms: bool = False,
    max_layers: int = 8,
    max_size: int = MAX_SIZE,
    revocation: RevocationMode = RevocationMode.SOFT,
    ocsp_responses: Sequence[bytes] = (),
    fetcher: RevocationFetcher | None = None,
) -> OpenResult:
    """Unwrap every S/MIME layer of ``message``: verify signatures, decrypt with ``keys`` ((certificate or
    None, private key) pairs, tried in order), decompress (at most ``max_size`` bytes); ``legacy_ciphers``
    and ``legacy_algorithms`` are the opt-ins of decrypt() and verify(); ``crls``, ``ocsp_responses``,
    ``fetcher`` and ``revocation`` are verify()'s revocation checking, for every signed layer. Returns the inner
    message, with the outer RFC 5322 fields it lacks, and a report of each layer, outermost first.

    Bad signatures are reported, not raised: read ``OpenResult.ok``. A signed part inside an unsigned
    multipart ends the unwrapping; its report shows the unsigned parts around it.

    Raises NotSmimeError when the message has no S/MIME layer at all, SmimeFormatError when the message
    (or the content of a layer) is declared ``application/pkcs7-mime`` (or ``x-pkcs7-mime``, or
    ``application/octet-stream`` named ``*.p7m``/``*.p7z``) but holds no signed, enveloped or compressed CMS
    data, DecryptionError (one message, whatever went wrong) when no key opens an encrypted layer,
    RecipientNotFoundError when no key is for it, SmimeLayerLimitError past ``max_layers`` layers, and the
    errors of verify(), decrypt(), decompress().
    """
    if not isinstance(message, Entity):
        raise UsageError("open() takes a parsed Message (smimekit.mime.parse)")
    if max_layers < 1:
        raise UsageError("max_layers must be at least 1")
    layers: list[LayerReport] = []
    current = message
    while (kind := _layer(current, inside=layers[-1].kind if layers else None)) is not None:
        if len(layers) >= max_layers:
            raise SmimeLayerLimitError(max_layers)
        if kind is LayerKind.SIGNED:
            report, found = verify_found(
                current,
                now=now,
                anchors=anchors,
                intermediates=intermediates,
                crls=crls,
                legacy_algorithms=legacy_algorithms,
                revocation=revocation,
                ocsp_responses=ocsp_responses,
                fetcher=fetcher,
            )
            signed = found[0]
            assert signed.content is not None
            current, notes = adopt_headers(current, signed.content, signed.signed_pieces())
            layers.append(LayerReport(kind, verification=report, notes=tuple(notes)))
        elif kind is LayerKind.COMPRESSED:
            current, notes = decompress_layer(current, max_size=max_size)
            layers.append(LayerReport(kind, notes=tuple(notes)))
        else:
            current, info, notes = _decrypt(current, keys, legacy_ciphers)
            layers.append(LayerReport(kind, decryption=info, notes=tuple(notes)))
    try:
        report, _ = verify_found(
            current,
            now=now,
            anchors=anchors,
            intermediates=intermediates,
            crls=crls,
            legacy_algorithms=legacy_algorithms,
            revocation=revocation,
            ocsp_responses=ocsp_responses,
            fetcher=fetcher,
        )
    except NotSmimeError:
        if not layers:
            raise
    else:
        if len(layers) >= max_layers:
            raise SmimeLayerLimitError(max_layers)
        note = "the signed part is inside an unsigned message: only what its report covers is signed"
        layers.append(LayerReport(LayerKind.SIGNED, verification=report, notes=(note,)))
    return OpenResult(inner=current, layers=tuple(layers))


def _layer(entity: Entity, *, inside: LayerKind | None) -> LayerKind | None:
    """The S/MIME layer ``entity`` is, or None when it is not one (the content of the layer ``inside``, or
    the message itself when None). Raises SmimeFormatError when it is declared S/MIME but holds no CMS
    data of a kind that can be opened: reporting it as not S/MIME would pass it off as plain mail."""
    if _mime.is_smime_signed_multipart(entity):
        return LayerKind.SIGNED
    kind = layer_kind(entity)
    if kind is not None:
        return _LAYER_KINDS[kind]
    if not _mime.is_pkcs7_mime(entity):
        return None
    with entity.decoded_stream() as stream:
        head = stream.read(64)
    oid = _mime.content_info_oid(head)
    declared = entity.content_type
    if entity.filename and declared not in _mime.PKCS7_MIME:
        declared += f" named {entity.filename[:80]!r}"  # repr: a hostile name prints no control bytes
    if not head:
        holds = "its body is empty"
    elif oid is None:
        holds = "its body is not CMS"
    else:
        holds = f"its CMS content type is {oid}, not signed, enveloped or compressed data"
    what = "it is" if inside is None else f"the content of its {inside.value} layer is"
    raise SmimeFormatError(f"{what} declared {declared} but holds no S/MIME data: {holds}")


def _decrypt(
    message: Message, keys: Sequence[Key], legacy_ciphers: bool
) -> tuple[Message, DecryptionInfo, list[str]]:
    if not keys:
        raise RecipientNotFoundError("any key (open() was given none)", ())
    failed: Exception | None = None
    for certificate, key in keys:
        try:
            return decrypt_layer(message, key=key, certificate=certificate, legacy_ciphers=legacy_ciphers)
        except DecryptionError as exc:
            failed = exc
        except RecipientNotFoundError as exc:
            if not isinstance(failed, DecryptionError):
                failed = exc
    assert failed is not None
    if isinstance(failed, DecryptionError):
        raise DecryptionError() from None
    raise failed
