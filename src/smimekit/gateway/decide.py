"""The gateway's decision, as a pure function: what to do with one message.

:func:`decide` takes what the message is (:class:`MessageFacts`), who it is from and to
(:class:`Envelope`), the :class:`~smimekit.gateway.policy.Policy` and what the store knows
(:class:`Knowledge`), and returns a :class:`Decision`: deliver one or more :class:`Copy` of it, each to
some of the recipients and each with its own treatment, or refuse it (for good, or for now). It reads no
clock, no store and no socket; :mod:`smimekit.gateway.process` does what it says.

The rules:

- *Outgoing* (the envelope sender is internal): sign when the policy says so, the sender has a key and
  the message is not signed yet; encrypt per recipient by :meth:`Policy.encryption_for` (the subject tag
  makes it ``required`` for everyone). Recipients with a usable certificate get one encrypted copy,
  the others (``never``, or ``opportunistic`` without a certificate) one clear copy. A ``required``
  recipient without a certificate refuses the whole message (reject or defer): nothing of it goes out,
  neither to that recipient nor to the others. A message the sender encrypted already goes out as it is
  (``MessageFacts.encrypted``: only a whole, well-formed EnvelopedData or AuthEnvelopedData counts, see
  :func:`smimekit.smime.kind_of`; a body that merely starts like one is plaintext and is treated so).
- *Incoming* (any other sender): internal recipients get the message opened: decrypted with their own key
  (one copy each, so no one reads what was encrypted for someone else), verified, and marked with an
  Authentication-Results field. External recipients (relayed mail) get it unchanged.
- Always: Authentication-Results fields that claim to come from our ``authserv_id`` are removed from
  what arrived, so that no sender can forge our verdict.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from smimekit.gateway.policy import EncryptMode, MissingCertificate, Policy, TagAction, normalize_address

__all__ = [
    "Copy",
    "Decision",
    "Direction",
    "Envelope",
    "Knowledge",
    "MessageFacts",
    "Verdict",
    "decide",
]


@dataclass(frozen=True)
class Envelope:
    """The SMTP envelope: ``MAIL FROM`` (``""`` for the null sender) and the ``RCPT TO`` addresses."""

    sender: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class MessageFacts:
    """What the decision needs to know about the message itself."""

    subject: str | None = None
    signed: bool = False
    """The message is S/MIME signed (clear-signed or opaque) at its top level."""
    encrypted: bool = False
    """The message is S/MIME encrypted (enveloped or authEnveloped data) at its top level: its whole CMS
    structure parses and names recipients (:func:`smimekit.smime.kind_of`). It exempts outgoing mail from
    encryption, so a caller must not set it from a content type or an OID prefix alone."""


@dataclass(frozen=True)
class Knowledge:
    """What the store knows that matters here (gathered by the caller for this envelope).

    ``can_sign``: the sender has a usable signing certificate and key. ``encryptable``: the recipients
    (normalized addresses) with a usable, trusted encryption certificate. ``decryptable``: the internal
    recipients with a private key in the store.
    """

    can_sign: bool = False
    encryptable: frozenset[str] = frozenset()
    decryptable: frozenset[str] = frozenset()


class Direction(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class Verdict(enum.Enum):
    """The SMTP answer to give once the copies are delivered."""

    DELIVER = "deliver"
    """Deliver every copy, then reply 250."""
    REJECT = "reject"
    """Deliver nothing; reply 554 5.7.1 (Postfix bounces the message)."""
    DEFER = "defer"
    """Deliver nothing; reply 451 4.7.1 (Postfix keeps the message and retries)."""


@dataclass(frozen=True)
class Copy:
    """One copy to deliver to ``recipients``.

    ``sign``: sign it with the sender's key. ``encrypt``: encrypt it to the certificates of its
    recipients. ``strip_subject_tag``: take the subject tag out first. ``decrypt_for``: decrypt it with
    the key of that (internal) recipient. ``annotate``: verify its signature and add our
    Authentication-Results field. Forged result fields are removed from every copy.
    """

    recipients: tuple[str, ...]
    sign: bool = False
    encrypt: bool = False
    strip_subject_tag: bool = False
    decrypt_for: str | None = None
    annotate: bool = False

    @property
    def label(self) -> str:
        """The treatment in a word or two, for the log: ``sign+encrypt``, ``decrypt+verify``, ``relay``."""
        steps = [
            name
            for name, on in (
                ("sign", self.sign),
                ("encrypt", self.encrypt),
                ("decrypt", self.decrypt_for is not None),
                ("verify", self.annotate),
            )
            if on
        ]
        return "+".join(steps) or "relay"


@dataclass(frozen=True)
class Decision:
    """What to do: ``verdict``, the ``copies`` to deliver (none unless DELIVER) and why (``reason``, a
    sentence for the SMTP reply and the log). ``missing`` are the recipients whose required encryption
    had no certificate."""

    direction: Direction
    verdict: Verdict
    copies: tuple[Copy, ...] = ()
    reason: str = ""
    missing: tuple[str, ...] = ()

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(c.label for c in self.copies) or (self.verdict.value,)


def decide(facts: MessageFacts, envelope: Envelope, policy: Policy, knowledge: Knowledge) -> Decision:
    """Decide what to do with a message (see the module's rules). Pure: never raises for any input of the
    declared types, and the same input gives the same decision."""
    recipients = _unique(envelope.recipients)
    if policy.is_internal(envelope.sender):
        return _outgoing(facts, recipients, policy, knowledge)
    return _incoming(facts, recipients, policy, knowledge)


def _unique(addresses: Iterable[str]) -> tuple[str, ...]:
    """The addresses, in order, without repeats (compared normalized)."""
    seen: dict[str, str] = {}
    for a in addresses:
        seen.setdefault(normalize_address(a), a)
    return tuple(seen.values())


def _outgoing(
    facts: MessageFacts, recipients: tuple[str, ...], policy: Policy, knowledge: Knowledge
) -> Decision:
    if facts.encrypted:  # the sender encrypted it already: nothing to add, nothing to weaken
        return Decision(
            Direction.OUTGOING,
            Verdict.DELIVER,
            (Copy(recipients),),
            reason="already encrypted by the sender",
        )
    tagged = policy.has_subject_tag(facts.subject)
    strip = tagged and policy.subject_tag_action is TagAction.REMOVE
    sign = policy.sign and knowledge.can_sign and not facts.signed
    encrypted: list[str] = []
    clear: list[str] = []
    missing: list[str] = []
    for rcpt in recipients:
        mode = EncryptMode.REQUIRED if tagged else policy.encryption_for(rcpt)
        usable = normalize_address(rcpt) in knowledge.encryptable
        if mode is EncryptMode.NEVER:
            clear.append(rcpt)
        elif usable:
            encrypted.append(rcpt)
        elif mode is EncryptMode.REQUIRED:
            missing.append(rcpt)
        else:
            clear.append(rcpt)
    if missing:
        why = "the subject asks for encryption" if tagged else "the policy requires encryption"
        reason = f"{why} but there is no usable certificate for {', '.join(missing)}"
        verdict = (
            Verdict.DEFER if policy.on_missing_certificate is MissingCertificate.DEFER else Verdict.REJECT
        )
        return Decision(Direction.OUTGOING, verdict, (), reason=reason, missing=tuple(missing))
    copies = [
        Copy(tuple(group), sign=sign, encrypt=enc, strip_subject_tag=strip)
        for group, enc in ((encrypted, True), (clear, False))
        if group
    ]
    parts = [f"{len(encrypted)} encrypted"] if encrypted else []
    parts += [f"{len(clear)} in clear"] if clear else []
    reason = ("signed; " if sign else "") + ", ".join(parts)
    return Decision(Direction.OUTGOING, Verdict.DELIVER, tuple(copies), reason=reason)


def _incoming(
    facts: MessageFacts, recipients: tuple[str, ...], policy: Policy, knowledge: Knowledge
) -> Decision:
    internal = [r for r in recipients if policy.is_internal(r)]
    external = [r for r in recipients if not policy.is_internal(r)]
    copies: list[Copy] = []
    if external:
        copies.append(Copy(tuple(external)))
    annotate = policy.verify
    if internal and facts.encrypted and policy.decrypt:
        # one copy per recipient with a key: each reads only what was encrypted for them
        keyless = [r for r in internal if normalize_address(r) not in knowledge.decryptable]
        for rcpt in internal:
            if normalize_address(rcpt) in knowledge.decryptable:
                copies.append(Copy((rcpt,), decrypt_for=rcpt, annotate=annotate))
        if keyless:
            copies.append(Copy(tuple(keyless), annotate=annotate))
    elif internal:
        copies.append(Copy(tuple(internal), annotate=annotate))
    reason = f"{len(internal)} internal, {len(external)} relayed"
    return Decision(Direction.INCOMING, Verdict.DELIVER, tuple(copies), reason=reason)
