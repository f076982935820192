"""The Authentication-Results field: reading the authserv-id of what arrived, writing ours."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from smimekit import mime, smime
from smimekit.gateway.results import UNREADABLE, authserv_id_of, claims, result_field
from tests.gateway._support import NOW, GatewayThread, Sink, make_store, message, pki, settings, signed_by


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gw.example.org; smime=pass", "gw.example.org"),
        ("GW.Example.ORG 1; none", "gw.example.org"),  # a version number after the id
        ("(a comment) gw.example.org (another (nested)); dkim=pass", "gw.example.org"),
        ('"gw.example.org"; spf=pass', "gw.example.org"),
        ("mx.partner.example; dkim=pass header.d=partner.example", "mx.partner.example"),
        ("", ""),
        # a ";" inside a comment before the id is not the end of the id (review finding)
        ("(x;y) gw.example.org; smime=pass", "gw.example.org"),
        # comments nest to any depth (review finding: only 4 levels were removed)
        ("(((((deep))))) gw.example.org; smime=pass", "gw.example.org"),
        ("(" * 200 + ")" * 200 + " gw.example.org; smime=pass", "gw.example.org"),
        ("(a \\) b) gw.example.org; smime=pass", "gw.example.org"),  # a quoted-pair in a comment
        ("gw.example.org(c); smime=pass", "gw.example.org"),
        ("gw.example.org.; smime=pass", "gw.example.org"),  # the same host
        ('"GW.example.org" 1; smime=pass', "gw.example.org"),
        ('"gw.example\\.org"; smime=pass', "gw.example.org"),  # a quoted-pair in the quoted-string
        ('"gw.exa;mple.org"; smime=pass', "gw.exa;mple.org"),
        ("\r\n (folded\r\n comment)\r\n\tgw.example.org\r\n ; smime=pass", "gw.example.org"),
        ("   ", ""),
    ],
)
def test_authserv_id_of(value: str, expected: str) -> None:
    assert authserv_id_of(value) == expected
    assert claims(value, "GW.Example.Org") is (expected == "gw.example.org")


@pytest.mark.parametrize(
    "value",
    [
        "(unclosed gw.example.org; smime=pass",  # a downstream reader may still find our id in it
        "((x) gw.example.org; smime=pass",
        ") gw.example.org; smime=pass",
        '"gw.example.org; smime=pass',
        "gw.example.org",  # no ";" at all
        "gw.example.org smime=pass",
        "gw.example.org/x; smime=pass",  # "/" cannot be in a token
        "@gw.example.org; smime=pass",
        "(only a comment)",
        "(" + "x" * 5000 + ") gw.example.org; smime=pass",  # past what is read
        "(a\\",
    ],
)
def test_an_unreadable_value_counts_as_ours(value: str) -> None:
    """Fail closed: a field whose authserv-id cannot be read is removed, as if it claimed to be ours."""
    assert authserv_id_of(value) == UNREADABLE
    assert claims(value, "gw.example.org") and claims(value, "anything.example")


def test_forged_fields_with_tricky_comments_do_not_pass_the_gateway() -> None:
    """Review finding: these two forgeries of our verdict were delivered as they came."""
    forged = [
        "(x;y) gw.example.org; smime=pass body.smime-identifier=ceo@example.org",
        "(((((deep))))) gw.example.org; smime=pass",
        '(a) "GW.Example.Org." (b); smime=pass',
        "(unclosed gw.example.org; smime=pass",  # unreadable: removed as if it were ours
    ]
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp) / "s.db")
        with Sink() as sink, GatewayThread(settings(sink.port), store, Path(tmp) / "spool") as gw:
            for value in forged:
                data = message(
                    "erin@outside.example", "alice@example.org", extra={"Authentication-Results": value}
                )
                code, text = gw.send("erin@outside.example", ["alice@example.org"], data)
                assert code == 250, text
    assert len(sink.messages) == len(forged)
    for received in sink.messages:
        with mime.parse(received.data) as m:
            values = m.headers.get_all("Authentication-Results")
        assert len(values) == 1 and values[0].startswith("gw.example.org; smime=none"), values
        assert "smime=pass" not in received.data.decode("ascii", "replace")


def _report(data: bytes, anchors: list[object]) -> smime.VerificationReport:
    with mime.parse(data) as m:
        return smime.verify(m, now=NOW, anchors=anchors)  # type: ignore[arg-type]


def test_pass_names_the_signer() -> None:
    report = _report(signed_by(pki().bob, message("bob@partner.example")), [pki().root.cert])
    value = result_field("gw.example.org", report=report, decryption="not encrypted")
    serial = format(pki().bob.cert.serial_number, "x")
    assert value == (
        "gw.example.org; smime=pass (not encrypted) body.smime-identifier=bob@partner.example "
        f'body.smime-part=1 body.smime-serial={serial} body.smime-issuer="CN=Gateway Test Root"'
    )
    assert authserv_id_of(value) == "gw.example.org"


def test_untrusted_is_policy_with_a_quoted_reason() -> None:
    report = _report(signed_by(pki().erin, message("erin@outside.example")), [pki().root.cert])
    value = result_field("gw.example.org", report=report, decryption="not encrypted")
    assert value.startswith('gw.example.org; smime=policy (not encrypted) reason="')
    assert "'CN=Unknown Root'" in value


def test_other_verdicts() -> None:
    assert result_field("gw", report=None, decryption="not encrypted") == "gw; smime=none (not encrypted)"
    assert result_field("gw", report=None, decryption="x", error='bad "cms"') == (
        'gw; smime=permerror (x) reason="bad \\"cms\\""'
    )
    unread = result_field("gw", report=None, decryption="encrypted, no key", encrypted_unread=True)
    assert unread.startswith("gw; smime=neutral (encrypted, no key) reason=")


def test_hostile_text_stays_one_clean_value() -> None:
    value = result_field("gw", report=None, decryption="x", error="line\r\nInjected: yes \u00e9\x00")
    assert value == 'gw; smime=permerror (x) reason="line??Injected: yes ??"'
    assert result_field("gw", report=None, decryption="a (b) \\c") == "gw; smime=none (a ?b? ?c)"
