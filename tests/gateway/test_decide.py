"""The pure decision, table by table: who gets which copy, treated how, and when nothing goes out."""

from __future__ import annotations

import pytest

from smimekit.gateway.decide import Copy, Direction, Envelope, Knowledge, MessageFacts, Verdict, decide
from smimekit.gateway.policy import EncryptMode, MissingCertificate, Policy, TagAction

ALICE = "alice@example.org"
BOB = "bob@partner.example"
CAROL = "carol@partner.example"
DAVE = "dave@example.org"
ERIN = "erin@outside.example"

POLICY = Policy(
    internal_domains=frozenset({"example.org"}),
    encrypt=EncryptMode.OPPORTUNISTIC,
    domains={"secret.example": EncryptMode.REQUIRED, "press.example": EncryptMode.NEVER},
    recipients={"ceo@partner.example": EncryptMode.REQUIRED},
)
KNOWS = Knowledge(
    can_sign=True,
    encryptable=frozenset({BOB, "x@secret.example", "y@press.example", DAVE}),
    decryptable=frozenset({ALICE}),
)
PLAIN = MessageFacts(subject="Hello")


def _copies(decision: object) -> list[tuple[tuple[str, ...], str]]:
    return [(c.recipients, c.label) for c in decision.copies]  # type: ignore[attr-defined]


# -------------------------------------------------------------------------------- outgoing

OUTGOING_CASES = [
    # (recipients, facts, knowledge, expected copies (recipients, label))
    pytest.param([BOB], PLAIN, KNOWS, [((BOB,), "sign+encrypt")], id="cert-known-encrypts"),
    pytest.param([CAROL], PLAIN, KNOWS, [((CAROL,), "sign")], id="opportunistic-no-cert-clear"),
    pytest.param(
        [BOB, CAROL],
        PLAIN,
        KNOWS,
        [((BOB,), "sign+encrypt"), ((CAROL,), "sign")],
        id="split-encrypted-and-clear",
    ),
    pytest.param(
        ["y@press.example", BOB],
        PLAIN,
        KNOWS,
        [((BOB,), "sign+encrypt"), (("y@press.example",), "sign")],
        id="never-stays-clear-even-with-cert",
    ),
    pytest.param(
        ["x@secret.example"], PLAIN, KNOWS, [(("x@secret.example",), "sign+encrypt")], id="required-with-cert"
    ),
    pytest.param(
        [BOB], PLAIN, Knowledge(encryptable=frozenset({BOB})), [((BOB,), "encrypt")], id="no-key-no-signature"
    ),
    pytest.param(
        [BOB], MessageFacts(signed=True), KNOWS, [((BOB,), "encrypt")], id="already-signed-not-signed-again"
    ),
    pytest.param(
        [BOB, CAROL],
        MessageFacts(encrypted=True),
        KNOWS,
        [((BOB, CAROL), "relay")],
        id="already-encrypted-as-is",
    ),
    pytest.param([DAVE], PLAIN, KNOWS, [((DAVE,), "sign+encrypt")], id="internal-recipient-encrypted-too"),
    pytest.param(
        [BOB, "bob@PARTNER.example"], PLAIN, KNOWS, [((BOB,), "sign+encrypt")], id="duplicate-recipient-once"
    ),
]


@pytest.mark.parametrize(("rcpts", "facts", "knows", "expected"), OUTGOING_CASES)
def test_outgoing(rcpts: list[str], facts: MessageFacts, knows: Knowledge, expected: list[object]) -> None:
    d = decide(facts, Envelope(ALICE, tuple(rcpts)), POLICY, knows)
    assert d.direction is Direction.OUTGOING
    assert d.verdict is Verdict.DELIVER
    assert _copies(d) == expected


MISSING_CASES = [
    pytest.param(
        ["x@secret.example", "z@secret.example"], PLAIN, ("z@secret.example",), id="domain-required"
    ),
    pytest.param(["ceo@partner.example", BOB], PLAIN, ("ceo@partner.example",), id="recipient-required"),
    pytest.param([CAROL, BOB], MessageFacts(subject="[SECURE] figures"), (CAROL,), id="subject-tag-forces"),
    pytest.param(["y@press.example"], MessageFacts(subject="[secure]"), (), id="tag-overrides-never"),
]


@pytest.mark.parametrize("mode", [MissingCertificate.REJECT, MissingCertificate.DEFER])
@pytest.mark.parametrize(("rcpts", "facts", "missing"), MISSING_CASES)
def test_required_without_certificate_sends_nothing(
    rcpts: list[str], facts: MessageFacts, missing: tuple[str, ...], mode: MissingCertificate
) -> None:
    policy = Policy(
        internal_domains=POLICY.internal_domains,
        domains=POLICY.domains,
        recipients=POLICY.recipients,
        on_missing_certificate=mode,
    )
    d = decide(facts, Envelope(ALICE, tuple(rcpts)), policy, KNOWS)
    if not missing:  # y@press.example has a certificate: the tag gets it encrypted despite "never"
        assert _copies(d) == [(("y@press.example",), "sign+encrypt")]
        return
    assert d.verdict is (Verdict.REJECT if mode is MissingCertificate.REJECT else Verdict.DEFER)
    assert d.copies == ()  # not even the recipients with a certificate get it
    assert d.missing == missing
    assert all(m in d.reason for m in missing)


def test_subject_tag_removed_or_kept() -> None:
    facts = MessageFacts(subject="[secure] figures")
    removed = decide(facts, Envelope(ALICE, (BOB,)), POLICY, KNOWS)
    assert removed.copies == (Copy((BOB,), sign=True, encrypt=True, strip_subject_tag=True),)
    keep = Policy(internal_domains=POLICY.internal_domains, subject_tag_action=TagAction.KEEP)
    kept = decide(facts, Envelope(ALICE, (BOB,)), keep, KNOWS)
    assert kept.copies == (Copy((BOB,), sign=True, encrypt=True, strip_subject_tag=False),)
    untagged = Policy(internal_domains=POLICY.internal_domains, subject_tag=None)
    assert _copies(decide(facts, Envelope(ALICE, (CAROL,)), untagged, KNOWS)) == [((CAROL,), "sign")]


def test_policy_sign_off() -> None:
    policy = Policy(internal_domains=POLICY.internal_domains, sign=False)
    assert _copies(decide(PLAIN, Envelope(ALICE, (BOB,)), policy, KNOWS)) == [((BOB,), "encrypt")]


def test_default_required_policy() -> None:
    policy = Policy(internal_domains=POLICY.internal_domains, encrypt=EncryptMode.REQUIRED)
    d = decide(PLAIN, Envelope(ALICE, (BOB, CAROL)), policy, KNOWS)
    assert d.verdict is Verdict.REJECT and d.missing == (CAROL,)


# -------------------------------------------------------------------------------- incoming

INCOMING_CASES = [
    pytest.param([ALICE], PLAIN, [((ALICE,), "verify")], id="plain-annotated"),
    pytest.param([ALICE, DAVE], MessageFacts(signed=True), [((ALICE, DAVE), "verify")], id="signed-one-copy"),
    pytest.param(
        [ALICE, DAVE],
        MessageFacts(encrypted=True),
        [((ALICE,), "decrypt+verify"), ((DAVE,), "verify")],
        id="encrypted-per-recipient-key",
    ),
    pytest.param(
        [ALICE, CAROL], PLAIN, [((CAROL,), "relay"), ((ALICE,), "verify")], id="relayed-external-untouched"
    ),
    pytest.param([CAROL], MessageFacts(encrypted=True), [((CAROL,), "relay")], id="relay-only"),
]


@pytest.mark.parametrize(("rcpts", "facts", "expected"), INCOMING_CASES)
def test_incoming(rcpts: list[str], facts: MessageFacts, expected: list[object]) -> None:
    d = decide(facts, Envelope(ERIN, tuple(rcpts)), POLICY, KNOWS)
    assert d.direction is Direction.INCOMING
    assert d.verdict is Verdict.DELIVER
    assert _copies(d) == expected


def test_incoming_never_signs_or_encrypts() -> None:
    """An outsider cannot get mail signed by us, even when the store could."""
    d = decide(PLAIN, Envelope(ERIN, (ALICE, BOB)), POLICY, KNOWS)
    assert not any(c.sign or c.encrypt for c in d.copies)


def test_null_sender_is_incoming() -> None:
    d = decide(PLAIN, Envelope("", (ALICE,)), POLICY, KNOWS)
    assert d.direction is Direction.INCOMING


def test_decrypt_and_verify_off() -> None:
    policy = Policy(internal_domains=POLICY.internal_domains, decrypt=False, verify=False)
    d = decide(MessageFacts(encrypted=True), Envelope(ERIN, (ALICE,)), policy, KNOWS)
    assert _copies(d) == [((ALICE,), "relay")]


def test_same_input_same_decision() -> None:
    args = (MessageFacts(subject="x"), Envelope(ALICE, (BOB, CAROL)), POLICY, KNOWS)
    assert decide(*args) == decide(*args)


def test_every_recipient_served_exactly_once() -> None:
    """Whatever the mix, each recipient is in exactly one copy (or none when refused)."""
    everyone = [ALICE, BOB, CAROL, DAVE, "x@secret.example", "y@press.example", "ceo@partner.example"]
    for sender in (ALICE, ERIN):
        for facts in (PLAIN, MessageFacts(signed=True), MessageFacts(encrypted=True)):
            for n in range(1, len(everyone) + 1):
                d = decide(facts, Envelope(sender, tuple(everyone[:n])), POLICY, KNOWS)
                served = [r for c in d.copies for r in c.recipients]
                assert len(served) == len(set(served))
                if d.verdict is Verdict.DELIVER:
                    assert sorted(served) == sorted(everyone[:n])
                else:
                    assert served == []
