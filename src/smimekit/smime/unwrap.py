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
    SmimeLayerLimitError,
    UsageError,
)
from smimekit.mime import Entity, Message
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
) -> OpenResult:
    """Unwrap every S/MIME layer of ``message``: verify signatures, decrypt with ``keys`` ((certificate or
    None, private key) pairs, tried in order), decompress (at most ``max_size`` bytes); ``legacy_ciphers``
    and ``legacy_algorithms`` are the opt-ins of decrypt() and verify(). Returns the inner
    message, with the outer RFC 5322 fields it lacks, and a report of each layer, outermost first.

    Bad signatures are reported, not raised: read ``OpenResult.ok``. A signed part inside an unsigned
    multipart ends the unwrapping; its report shows the unsigned parts around it.

    Raises NotSmimeError when the message has no S/MIME layer at all, DecryptionError (one message, whatever
    went wrong) when no key opens an encrypted layer, RecipientNotFoundError when no key is for it,
    SmimeLayerLimitError past ``max_layers`` layers, and the errors of verify(), decrypt(), decompress().
    """
    if not isinstance(message, Entity):
        raise UsageError("open() takes a parsed Message (smimekit.mime.parse)")
    if max_layers < 1:
        raise UsageError("max_layers must be at least 1")
    layers: list[LayerReport] = []
    current = message
    while (kind := _layer(current)) is not None:
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


def _layer(entity: Entity) -> LayerKind | None:
    if _mime.is_smime_signed_multipart(entity):
        return LayerKind.SIGNED
    kind = layer_kind(entity)
    return None if kind is None else _LAYER_KINDS[kind]


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
