"""Conversion to and from the stdlib's :class:`email.message.EmailMessage`, for code that already uses it.

Both directions go through bytes, so structure, header fields and decoded payloads survive; what the stdlib
re-serializes (folding, line endings) follows its policy, while a message read back from it is a normal
parsed :class:`Message` that re-emits its own bytes exactly from then on.
"""

from __future__ import annotations

import email
import email.errors
import email.generator
import email.message
import email.policy
import io
from typing import cast

from ..errors import MimeBuildError
from .entity import Entity, Message

__all__ = ["from_email_message", "to_email_message"]


def to_email_message(
    msg: Entity, *, policy: email.policy.Policy = email.policy.default
) -> email.message.EmailMessage:
    """Parse the bytes of ``msg`` with the stdlib under ``policy`` (an :class:`email.policy.EmailPolicy`).

    ``msg`` is not changed. Raises MimeBuildError for a policy that does not build EmailMessage objects.
    """
    if not isinstance(policy, email.policy.EmailPolicy):
        raise MimeBuildError("to_email_message() needs an EmailPolicy such as email.policy.default")
    return cast(email.message.EmailMessage, email.message_from_bytes(msg.to_bytes(), policy=policy))


def from_email_message(em: email.message.Message, *, eol: bytes = b"\r\n") -> Message:
    """Serialize a stdlib message (``EmailMessage`` or a compat32 ``Message``) and parse the bytes.

    Lines end in ``eol``; no ``>From`` mangling is done. Raises MimeBuildError when the stdlib cannot
    serialize the message or ``eol`` is not CRLF or LF.
    """
    from . import parse

    if not isinstance(em, email.message.Message):
        raise MimeBuildError(f"from_email_message() needs an email.message.Message, not {type(em).__name__}")
    if eol not in (b"\r\n", b"\n"):
        raise MimeBuildError(f"the line ending must be b'\\r\\n' or b'\\n', not {eol!r}")
    out = io.BytesIO()
    policy = em.policy.clone(linesep=eol.decode("ascii"))
    try:
        email.generator.BytesGenerator(out, mangle_from_=False, policy=policy).flatten(em, unixfrom=False)
    except (TypeError, ValueError, LookupError, UnicodeError, email.errors.MessageError) as exc:
        raise MimeBuildError(f"the stdlib cannot serialize this message: {exc}") from exc
    return parse(out.getvalue())
