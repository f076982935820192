"""``smimekit sign``: sign a message with a key from files (``--cert``/``--key``, ``--p12``) or from the
store (``--from ADDR``)."""

from __future__ import annotations

import datetime as dt

import click

from .. import cms, smime
from ..cms import DigestAlgorithm
from ..cms.algorithms import SigningKey
from ..errors import UsageError
from ._common import store_option
from ._identity import required_store, signing_identity
from ._keys import KeyPair, key_options, key_pairs, signing_pair
from .smime_cmds import (
    FILE,
    input_argument,
    input_size,
    intermediates,
    kind_of,
    now,
    output_option,
    read_message,
    secrets_for,
    working,
    write_message,
)

__all__ = ["DIGESTS", "sign"]

DIGESTS = {
    "sha256": DigestAlgorithm.SHA256,
    "sha384": DigestAlgorithm.SHA384,
    "sha512": DigestAlgorithm.SHA512,
}


@click.command()
@store_option
@click.option(
    "--from",
    "sender",
    metavar="ADDR",
    help="Sign as ADDR with the key and certificate the store holds for it: the newest valid certificate "
    "for the address that has a private key and allows signing (instead of --cert/--key or --p12).",
)
@key_options
@click.option(
    "--chain",
    metavar="FILE",
    type=FILE,
    multiple=True,
    help="Intermediate CA certificates to put into the signature (repeatable); with --from, the "
    "store's certificates of the issuers are put in too.",
)
@click.option(
    "--opaque",
    is_flag=True,
    help="Sign as application/pkcs7-mime (signed-data), which only S/MIME programs can show; the default "
    "is clear-signed multipart/signed.",
)
@click.option(
    "--digest",
    type=click.Choice(list(DIGESTS)),
    help="The message digest (default: sha256; sha512 for Ed25519 keys).",
)
@input_argument
@output_option("the signed message")
def sign(
    sender: str | None,
    cert: str | None,
    key: str | None,
    p12: str | None,
    password_file: str | None,
    chain: tuple[str, ...],
    opaque: bool,
    digest: str | None,
    input: str,
    output: str,
) -> None:
    """Sign the message in IN with your key and certificate: from the store with --from ADDR, or from
    files with --cert and --key, or --p12.

    The message body is put in canonical form and signed; From, To, Subject and the other header
    fields stay outside the signature, as RFC 8551 has it. The signing time is the current time.
    A key in the store is unlocked with --password-file, SMIMEKIT_PASSWORD or a prompt.
    """
    secrets = secrets_for(password_file, input)
    when = now()
    if sender is not None:
        if cert is not None or key is not None or p12 is not None:
            raise UsageError("give either --from ADDR (the store) or --cert/--key or --p12 (files), not both")
        with required_store(f"to sign as {sender}") as store:
            pair = signing_identity(store, sender, secrets=secrets, at=when)
    else:
        pair = signing_pair(key_pairs(cert=cert, key=key, p12=p12, secrets=secrets, cert_required=True))
    _sign(pair, chain, opaque=opaque, digest=digest, input=input, output=output, when=when)


def _sign(
    pair: KeyPair,
    chain: tuple[str, ...],
    *,
    opaque: bool,
    digest: str | None,
    input: str,
    output: str,
    when: dt.datetime,
) -> None:
    assert pair.certificate is not None
    if not isinstance(pair.key, SigningKey):
        raise UsageError(f"{kind_of(pair.key)} keys cannot sign (RSA, EC and Ed25519 keys can)")
    extra = [*pair.chain, *intermediates(chain)]
    signer = cms.Signer(
        pair.certificate,
        pair.key,
        digest=DIGESTS[digest] if digest else None,
        extra_certificates=tuple(extra),
    )
    with read_message(input) as msg, working("signing", input_size(input)):
        signed = smime.sign(msg, signer, signing_time=when, opaque=opaque)
        write_message(signed, output)
