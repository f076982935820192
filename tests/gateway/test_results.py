"""The Authentication-Results field: reading the authserv-id of what arrived, writing ours."""

from __future__ import annotations

import pytest

from smimekit import mime, smime
from smimekit.gateway.results import authserv_id_of, result_field
from tests.gateway._support import NOW, message, pki, signed_by


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gw.example.org; smime=pass", "gw.example.org"),
        ("GW.Example.ORG 1; none", "gw.example.org"),  # a version number after the id
        ("(a comment) gw.example.org (another (nested)); dkim=pass", "gw.example.org"),
        ('"gw.example.org"; spf=pass', "gw.example.org"),
        ("mx.partner.example; dkim=pass header.d=partner.example", "mx.partner.example"),
        ("", ""),
    ],
)
def test_authserv_id_of(value: str, expected: str) -> None:
    assert authserv_id_of(value) == expected


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
