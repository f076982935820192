"""The TOML configuration, the flags that override it, and ``smimekit gateway check``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smimekit.cli.main import cli
from smimekit.errors import GatewayError
from smimekit.gateway.policy import EncryptMode, MissingCertificate, TagAction, load_config, parse_config

CONFIG = """
[gateway]
listen = "127.0.0.1:10025"
next_hop = "127.0.0.1:10026"
authserv_id = "mx.example.org"
password_file = "secret.txt"
workers = 8

[policy]
internal_domains = ["example.org", "Example.NET"]
internal_users = ["boss@gmail.example"]
encrypt = "opportunistic"
on_missing_certificate = "defer"
subject_tag = "[crypt]"
subject_tag_action = "keep"

[policy.domains."partner.example"]
encrypt = "required"

[policy.domains."press.partner.example"]
encrypt = "never"

[policy.recipients."ceo@partner.example"]
encrypt = "never"
"""


def _write(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return path


def test_file_is_read(tmp_path: Path) -> None:
    s = load_config(_write(tmp_path))
    p = s.policy
    assert s.listen == ("127.0.0.1", 10025) and s.next_hop == ("127.0.0.1", 10026)
    assert s.password_file == tmp_path / "secret.txt"  # relative to the file
    assert s.workers == 8
    assert p.authserv_id == "mx.example.org"
    assert p.internal_domains == {"example.org", "example.net"}
    assert p.is_internal("x@Sub.Example.ORG") and p.is_internal("boss@gmail.example")
    assert not p.is_internal("x@example.org.evil.example") and not p.is_internal("")
    assert p.encryption_for("a@partner.example") is EncryptMode.REQUIRED
    assert p.encryption_for("a@deep.press.partner.example") is EncryptMode.NEVER  # most specific domain
    assert p.encryption_for("ceo@PARTNER.example") is EncryptMode.NEVER  # the address wins
    assert p.encryption_for("x@elsewhere.example") is EncryptMode.OPPORTUNISTIC
    assert p.on_missing_certificate is MissingCertificate.DEFER
    assert p.subject_tag == "[crypt]" and p.subject_tag_action is TagAction.KEEP


def test_flags_override_the_file(tmp_path: Path) -> None:
    s = load_config(
        _write(tmp_path), listen="127.0.0.1:2525", encrypt="required", internal_domains=("extra.example",)
    )
    assert s.listen == ("127.0.0.1", 2525)
    assert s.policy.encrypt is EncryptMode.REQUIRED
    assert "extra.example" in s.policy.internal_domains and "example.org" in s.policy.internal_domains


def test_flags_alone_are_enough() -> None:
    s = parse_config(
        {}, listen="127.0.0.1:2525", next_hop="127.0.0.1:2526", internal_domains=("example.org",)
    )
    assert s.policy.encrypt is EncryptMode.OPPORTUNISTIC and s.policy.sign


def test_policy_is_frozen(tmp_path: Path) -> None:
    p = load_config(_write(tmp_path)).policy
    with pytest.raises(TypeError):
        p.domains["x.example"] = EncryptMode.NEVER  # type: ignore[index]
    with pytest.raises(AttributeError):
        p.sign = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[policy]\ninternal_domains = ["a.example"]\nencrypt = "always"\n', "encrypt must be one of"),
        ("[policy]\n", "no internal domain"),
        ('[policy]\ninternal_domains = ["a.example"]\nbogus = 1\n', "unknown setting"),
        (
            '[gateway]\nlisten = "nowhere"\n[policy]\ninternal_domains = ["a.example"]\n',
            "listen must be HOST:PORT",
        ),
        (
            '[policy]\ninternal_domains = ["a.example"]\n[policy.domains."b.example"]\nencrypt = "maybe"\n',
            "encrypt",
        ),
        (
            '[policy]\ninternal_domains = ["a.example"]\n[policy.recipients.nobody]\nencrypt = "never"\n',
            "not an e-mail",
        ),
        ('[gateway]\nauthserv_id = "a b"\n[policy]\ninternal_domains = ["a.example"]\n', "authserv_id"),
        ("[policy\n", "not valid TOML"),
    ],
)
def test_bad_configuration_names_the_setting(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(GatewayError, match=words):
        load_config(_write(tmp_path, text))


def test_subject_tag_removal() -> None:
    p = parse_config({}, internal_domains=("example.org",)).policy
    assert p.has_subject_tag("Re: [SECURE] figures")
    assert p.without_subject_tag("Re: [SECURE] figures") == "Re: figures"
    assert p.without_subject_tag("[secure] figures") == "figures"
    assert p.without_subject_tag("figures") == "figures"


def test_cli_check_prints_the_policy_for_an_address(tmp_path: Path) -> None:
    path = _write(tmp_path)
    result = CliRunner().invoke(
        cli, ["gateway", "check", "--config", str(path), "--address", "ceo@partner.example"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["ok"] is True
    assert out["address"]["internal"] is False
    assert out["address"]["as_recipient"]["encrypt"] == "never"
    assert out["settings"]["policy"]["domains"]["partner.example"] == "required"


def test_cli_check_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    path = _write(tmp_path, '[policy]\ninternal_domains = ["a.example"]\nencrypt = "always"\n')
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and "encrypt must be one of never | opportunistic | required" in lines[0]
    assert "Traceback" not in result.output


def test_cli_check_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "cannot read the gateway configuration" in result.output


def test_cli_check_shows_the_revocation_mode(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        CONFIG.replace('subject_tag_action = "keep"', 'subject_tag_action = "keep"\nrevocation = "hard"'),
    )
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["settings"]["policy"]["revocation"] == "hard"
    bad = _write(tmp_path, '[policy]\ninternal_domains = ["a.example"]\nrevocation = "sometimes"\n')
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(bad)])
    assert result.exit_code == 2 and "revocation must be one of hard | soft | off" in result.output
