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


# ------------------------------------------------------------- where the gateway listens and sends


def _domains(text: str) -> str:
    return text + '[policy]\ninternal_domains = ["a.example"]\n'


@pytest.mark.parametrize("listen", ["0.0.0.0:10025", "[::]:10025", "192.0.2.7:10025", "mail.example.org:25"])
def test_a_public_listen_address_needs_an_explicit_opt_in(tmp_path: Path, listen: str) -> None:
    """Review finding: the gateway checks no client, so listening on 0.0.0.0 made it an open relay that
    signs with internal users' keys, and nothing said so."""
    with pytest.raises(GatewayError, match=r"not a loopback address.*allow_public_listen"):
        load_config(_write(tmp_path, _domains(f'[gateway]\nlisten = "{listen}"\n')))
    with pytest.raises(GatewayError, match="not a loopback address"):
        parse_config({}, listen=listen, internal_domains=("a.example",))
    opted_in = load_config(
        _write(tmp_path, _domains(f'[gateway]\nlisten = "{listen}"\nallow_public_listen = true\n'))
    )
    assert opted_in.allow_public_listen and opted_in.to_dict()["listen"] == listen
    flag = parse_config({}, listen=listen, internal_domains=("a.example",), allow_public_listen=True)
    assert flag.allow_public_listen


@pytest.mark.parametrize(
    ("listen", "host"),
    [
        ("127.0.0.1:10025", "127.0.0.1"),
        ("127.0.0.2:0", "127.0.0.2"),
        ("[::1]:10025", "::1"),
        ("[::ffff:127.0.0.1]:10025", "::ffff:127.0.0.1"),
        ("localhost:10025", "localhost"),
    ],
)
def test_loopback_listen_addresses_need_nothing(listen: str, host: str) -> None:
    s = parse_config({}, listen=listen, internal_domains=("a.example",))
    assert s.listen[0] == host and not s.allow_public_listen


@pytest.mark.parametrize(
    "value",
    [
        "[::1",  # review finding: was read as host ":" port 1
        "[::1]",
        "[::1]10026",
        "::1:10026",  # IPv6 needs brackets
        "[127.0.0.1]:10026",
        "[example.org]:10026",
        "127.0.0.1:",
        ":10026",
        "127.0.0.1:0",  # no "any port" for the next hop
        "127.0.0.1:65536",
        "127.0.0.1:+25",
        "127.0.0.1:\u0661\u0660",  # Arabic-Indic digits are digits to str.isdigit, not to SMTP
        "under_score.example:25",
        "a..b:25",
        "-a.example:25",
        "1.2.3:25",
        "a b:25",
    ],
)
def test_next_hop_is_validated(value: str) -> None:
    with pytest.raises(GatewayError, match="next_hop must be HOST:PORT"):
        parse_config({}, next_hop=value, internal_domains=("a.example",))


@pytest.mark.parametrize(
    ("value", "pair"),
    [
        ("127.0.0.1:10026", ("127.0.0.1", 10026)),
        ("[::1]:10026", ("::1", 10026)),
        ("mx.example.org:25", ("mx.example.org", 25)),
        (" mx.example.org.:65535 ", ("mx.example.org.", 65535)),
    ],
)
def test_next_hop_forms(value: str, pair: tuple[str, int]) -> None:
    assert parse_config({}, next_hop=value, internal_domains=("a.example",)).next_hop == pair


def test_authserv_id_must_be_a_token() -> None:
    for bad in ["a/b", "gw\x00", "gw@example.org", "."]:
        with pytest.raises(GatewayError, match="authserv_id"):
            parse_config({}, internal_domains=("a.example",), authserv_id=bad)
    assert parse_config(
        {}, internal_domains=("a.example",), authserv_id="GW.example.org."
    ).policy.authserv_id == ("GW.example.org")


def test_cli_check_a_config_that_is_not_utf8_is_one_line_exit_2(tmp_path: Path) -> None:
    """Review finding: tomllib's UnicodeDecodeError came out as an internal error (exit 70)."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(
        '[policy]\ninternal_domains = ["a.example"]\nsubject_tag = "[sécurisé]"\n'.encode("latin-1")
    )
    with pytest.raises(GatewayError, match="not UTF-8"):
        load_config(path)
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and "is not UTF-8" in lines[0] and "Traceback" not in result.output


def test_cli_check_does_not_print_the_store_password(tmp_path: Path) -> None:
    """Review finding: ``gateway check`` printed a postgresql:// store URL with its password."""
    path = _write(
        tmp_path, _domains('[gateway]\nstore = "postgresql://gw:s3cr3t-pw@db.example.org:5432/smimekit"\n')
    )
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-pw" not in result.output
    store = json.loads(result.output)["settings"]["store"]
    assert store.startswith("postgresql://gw:") and store.endswith("@db.example.org:5432/smimekit")
    # the settings themselves keep the password: the gateway needs it to connect
    assert "s3cr3t-pw" in (load_config(path).store or "")
    # a SQLite store is a path, shown as it is
    path = _write(tmp_path, _domains('[gateway]\nstore = "/var/lib/smimekit/store.sqlite3"\n'))
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["settings"]["store"] == "/var/lib/smimekit/store.sqlite3"


def test_cli_check_shows_the_listen_opt_in(tmp_path: Path) -> None:
    path = _write(tmp_path, _domains('[gateway]\nlisten = "0.0.0.0:10025"\n'))
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 2 and "not a loopback address" in result.output
    path.write_text(_domains('[gateway]\nlisten = "0.0.0.0:10025"\nallow_public_listen = true\n'))
    result = CliRunner().invoke(cli, ["gateway", "check", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["settings"]["allow_public_listen"] is True
