"""The command line of the MIME engine (``compose``, ``inspect``, ``extract``) and the ``smimekit`` group,
driven through click's CliRunner as a user would drive them."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from smimekit import SmimekitError
from smimekit.cli._common import state, store_option
from smimekit.cli.main import cli
from smimekit.errors import DecryptionError, SignatureError
from smimekit.mime import parse, parse_file

# ------------------------------------------------------------------------------------------- helpers


def run(args: list[str], *, input: bytes | str | None = None, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, args, input=input, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    return result


def fails(args: list[str], *, input: bytes | None = None, code: int = 2) -> str:
    """Run a command that must fail: one line on stderr, nothing on stdout, no traceback."""
    result = CliRunner().invoke(cli, args, input=input, catch_exceptions=False)
    assert result.exit_code == code, (result.exit_code, result.output)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("smimekit: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


def multipart(*parts: bytes, headers: bytes = b"") -> bytes:
    out = [
        b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
        b"Date: Mon, 05 Feb 2024 10:00:00 +0100\r\nMIME-Version: 1.0\r\n"
        + headers
        + b"Content-Type: multipart/mixed; boundary=BOUND\r\n\r\n"
    ]
    for p in parts:
        out.append(b"--BOUND\r\n" + p + b"\r\n")
    out.append(b"--BOUND--\r\n")
    return b"".join(out)


TEXT_PART = (
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
    b"Gr=C3=BC=C3=9Fe aus K=C3=B6ln\r\n"
)


def attachment(
    filename_param: bytes, data: bytes = b"hello", ctype: bytes = b"application/octet-stream"
) -> bytes:
    import base64

    return (
        b"Content-Type: " + ctype + b"\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; " + filename_param + b"\r\n\r\n" + base64.encodebytes(data)
    )


@pytest.fixture
def message(tmp_path: Path) -> Path:
    path = tmp_path / "in.eml"
    path.write_bytes(
        multipart(
            TEXT_PART,
            attachment(b'filename="report.pdf"', b"%PDF-1.4 fake", b"application/pdf"),
            attachment(
                b"filename*=utf-8''Gr%C3%BC%C3%9Fe.txt",
                "Grüße".encode("latin-1"),
                b"text/plain; charset=iso-8859-1",
            ),
        )
    )
    return path


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    yield


# ------------------------------------------------------------------------------------------- the group


def test_version_and_help() -> None:
    assert run(["--version"]).output.startswith("smimekit ")
    out = run(["--help"]).output
    for name in ("compose", "inspect", "extract", "demo", "--store", "SMIMEKIT_STORE"):
        assert name in out
    for name in ("compose", "inspect", "extract", "demo"):
        assert "Usage: smimekit " + name in run([name, "--help"]).output


def _probe(exc: BaseException | None = None) -> click.Command:
    @click.command("probe")
    def probe() -> None:
        if exc is not None:
            raise exc
        click.echo(f"store={state().store}")

    return probe


def test_global_store_option_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.commands, "probe", _probe())
    assert run(["probe"]).output == "store=None\n"
    assert run(["--store", "/tmp/s.db", "probe"]).output == "store=/tmp/s.db\n"
    monkeypatch.setenv("SMIMEKIT_STORE", "/tmp/env.db")
    assert run(["probe"]).output == "store=/tmp/env.db\n"
    # a command may accept --store after its name too; that one wins
    monkeypatch.setitem(cli.commands, "probe", store_option(_probe()))
    assert run(["probe", "--store", "/tmp/cmd.db"]).output == "store=/tmp/cmd.db\n"
    assert run(["--store", "/tmp/s.db", "probe"]).output == "store=/tmp/s.db\n"


@pytest.mark.parametrize(
    ("exc", "code", "text"),
    [
        (
            SmimekitError("bad thing\nsecond line \x1b[31m"),
            2,
            "smimekit: error: bad thing second line \\x1b[31m",
        ),
        (
            SignatureError(("digest mismatch",)),
            1,
            "smimekit: error: the signature does not verify: digest mismatch",
        ),
        (DecryptionError(), 1, "smimekit: error: " + DecryptionError.MESSAGE),
        (PermissionError(13, "Permission denied", "/x/y"), 2, "smimekit: error: /x/y: permission denied"),
    ],
)
def test_errors_become_one_line_and_an_exit_code(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, code: int, text: str
) -> None:
    monkeypatch.setitem(cli.commands, "probe", _probe(exc))
    assert fails(["probe"], code=code) == text


def test_interrupt_and_broken_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cli.commands, "probe", _probe(KeyboardInterrupt()))
    result = CliRunner().invoke(cli, ["probe"])
    assert result.exit_code == 130
    assert "Traceback" not in result.output
    monkeypatch.setitem(cli.commands, "probe", _probe(BrokenPipeError(32, "Broken pipe")))
    result = CliRunner().invoke(cli, ["probe"])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_usage_errors_are_one_line() -> None:
    line = fails(["inspect"])
    assert "Missing argument 'FILE'" in line and "smimekit inspect --help" in line
    assert "No such command" in fails(["frobnicate"])
    assert "--nope" in fails(["inspect", "--nope", "x"])


# ------------------------------------------------------------------------------------------- compose

BASIC = ["compose", "--from", "Jürgen <j@example.com>", "--to", "bob@example.org", "--subject", "Grüße"]


def test_compose_minimal_to_stdout() -> None:
    out = run([*BASIC, "--text", "Hallo Welt"]).stdout_bytes
    msg = parse(out)
    assert msg.to_bytes() == out
    assert msg.headers.get("from") == "Jürgen <j@example.com>"
    assert msg.headers.get("to") == "bob@example.org"
    assert msg.subject == "Grüße"
    assert msg.headers.get("date") and msg.headers.get("message-id")
    assert (msg.content_type, msg.charset, msg.text()) == ("text/plain", "utf-8", "Hallo Welt")
    assert out.isascii()  # RFC 2047 encoded-words, not raw UTF-8 headers


def test_compose_everything_to_a_file(tmp_path: Path) -> None:
    (tmp_path / "body.txt").write_text("Grüße aus Köln\n", encoding="utf-8")
    (tmp_path / "page.html").write_text('<p>Grüße <img src="cid:logo.png"></p>\n', encoding="utf-8")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 fake")
    (tmp_path / "Übersicht.csv").write_bytes(b"a,b\n1,2\n")
    args = [
        *BASIC,
        "--to", "Ann <ann@example.net>",
        "--cc", "c@example.com",
        "--cc", "d@example.com",
        "--text-file", "body.txt",
        "--html-file", "page.html",
        "--inline", "logo.png",
        "--attach", "report.pdf",
        "--attach", "Übersicht.csv",
        "--charset", "iso-8859-1",
        "-o", "out.eml",
    ]  # fmt: skip
    assert run(args).stdout == ""
    with parse_file(tmp_path / "out.eml") as msg:
        assert msg.headers.get("to") == "bob@example.org, Ann <ann@example.net>"
        assert msg.headers.get("cc") == "c@example.com, d@example.com"
        shape = [(e.depth, e.content_type, e.charset, e.filename, e.content_id) for e in msg.walk()]
        assert shape == [
            (0, "multipart/mixed", None, None, None),
            (1, "multipart/alternative", None, None, None),
            (2, "text/plain", "iso-8859-1", None, None),
            (2, "multipart/related", None, None, None),
            (3, "text/html", "iso-8859-1", None, None),
            (3, "image/png", None, "logo.png", "logo.png"),
            (1, "application/pdf", None, "report.pdf", None),
            (1, "text/csv", "us-ascii", "Übersicht.csv", None),
        ]
        parts = list(msg.walk())
        assert parts[2].decoded() == "Grüße aus Köln\n".encode("latin-1").replace(b"\n", b"\r\n")
        assert parts[4].text().startswith("<p>Grüße <img")
        assert parts[5].decoded() == b"\x89PNG\r\n\x1a\nfake"
        assert parts[6].decoded() == b"%PDF-1.4 fake"
        assert parts[7].decoded() == b"a,b\n1,2\n"


def test_compose_reads_stdin_and_pipes_into_inspect() -> None:
    composed = run([*BASIC, "--text-file", "-", "-o", "-"], input="Grüße\n".encode()).stdout_bytes
    assert parse(composed).text() == "Grüße\r\n"
    tree = run(["inspect", "-"], input=composed).stdout
    assert "1 text/plain, charset=utf-8" in tree and "Subject: Grüße" in tree


def test_compose_attachment_from_stdin() -> None:
    out = run([*BASIC, "--text", "x", "--attach", "-"], input=b"\x00\x01data").stdout_bytes
    att = next(e for e in parse(out).walk() if e.filename)
    assert (att.filename, att.decoded()) == ("stdin", b"\x00\x01data")


def test_compose_output_is_atomic(tmp_path: Path) -> None:
    (tmp_path / "out.eml").write_bytes(b"old")
    fails([*BASIC, "--text", "x", "--attach", "missing.pdf", "-o", "out.eml"])
    assert (tmp_path / "out.eml").read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.eml"]  # no temporary file left
    run([*BASIC, "--text", "x", "-o", "out.eml"])
    assert parse((tmp_path / "out.eml").read_bytes()).text() == "x"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--text", "x", "--text-file", "body.txt"], "exactly one of --text or --text-file"),
        ([], "exactly one of --text or --text-file"),
        (["--text-file", "missing.txt"], "cannot read text file missing.txt: no such file or directory"),
        (["--text-file", "latin1.txt"], "text file latin1.txt is not UTF-8 text (byte 0xfc at offset 2)"),
        (["--text", "x", "--html-file", "latin1.txt"], "HTML file latin1.txt is not UTF-8 text"),
        (["--text", "x", "--attach", "missing.pdf"], "cannot read attachment missing.pdf"),
        (["--text", "x", "--charset", "klingon-8"], "the charset 'klingon-8' is unknown"),
        (["--text", "€", "--charset", "iso-8859-1"], "the charset 'iso-8859-1' cannot encode '€'"),
        (["--text", "x", "--to", "not an address"], "'not an address'"),
        (["--text", "x", "--inline", "body.txt"], "inline"),
        (["--text-file", "-", "--html-file", "-"], "stdin ('-') can be read only once"),
        (["--text", "x", "-o", "."], "is a directory"),
    ],
)
def test_compose_errors(tmp_path: Path, extra: list[str], needle: str) -> None:
    (tmp_path / "body.txt").write_text("hi")
    (tmp_path / "latin1.txt").write_bytes("Grüße".encode("latin-1"))
    line = fails([*BASIC, *extra], input=b"")
    assert needle in line, line


def test_compose_requires_from_to_and_subject() -> None:
    assert "Missing option '--from'" in fails(["compose", "--to", "a@b.c", "--subject", "s", "--text", "x"])
    assert "Missing option '--to'" in fails(["compose", "--from", "a@b.c", "--subject", "s", "--text", "x"])
    assert "Missing option '--subject'" in fails(
        ["compose", "--from", "a@b.c", "--to", "a@b.c", "--text", "x"]
    )


# ------------------------------------------------------------------------------------------- inspect


def test_inspect_tree(message: Path) -> None:
    out = run(["inspect", str(message)]).stdout
    assert "From: Alice <alice@example.com>" in out
    assert "Subject: Grüße" in out
    assert "Date: Mon, 05 Feb 2024 10:00:00 +0100" in out
    assert "1 multipart/mixed" in out
    assert "1.1 text/plain, charset=utf-8, quoted-printable, 19 bytes" in out
    assert '1.2 application/pdf, base64, 13 bytes, attachment "report.pdf"' in out
    assert '1.3 text/plain, charset=iso-8859-1, base64, 5 bytes, attachment "Grüße.txt"' in out
    assert "4 entities, 0 defects" in out


def test_inspect_json_schema(message: Path) -> None:
    doc = json.loads(run(["inspect", "--json", str(message)]).stdout)
    assert doc["headers"]["subject"] == "Grüße"
    assert doc["headers"]["from"] == "Alice <alice@example.com>"
    assert doc["size"] == message.stat().st_size
    assert doc["defect_count"] == 0
    keys = {
        "path": str,
        "depth": int,
        "content_type": str,
        "transfer_encoding": str,
        "raw_size": int,
    }
    optional = {"charset": str, "filename": str, "disposition": str, "content_id": str, "size": int}
    for part in doc["parts"]:
        for key, typ in keys.items():
            assert isinstance(part[key], typ), (key, part)
        for key, typ in optional.items():
            assert part[key] is None or isinstance(part[key], typ), (key, part)
        assert isinstance(part["defects"], list)
    assert [(p["path"], p["depth"], p["content_type"]) for p in doc["parts"]] == [
        ("1", 0, "multipart/mixed"),
        ("1.1", 1, "text/plain"),
        ("1.2", 1, "application/pdf"),
        ("1.3", 1, "text/plain"),
    ]
    root, text, pdf, note = doc["parts"]
    assert root["size"] is None and root["charset"] is None
    assert text["size"] == len("Grüße aus Köln\r\n".encode()) and text["charset"] == "utf-8"
    assert (pdf["filename"], pdf["disposition"], pdf["size"]) == ("report.pdf", "attachment", 13)
    assert (note["filename"], note["charset"], note["transfer_encoding"]) == (
        "Grüße.txt",
        "iso-8859-1",
        "base64",
    )


def test_inspect_reports_defects_per_entity() -> None:
    data = b"Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nnever closed\r\n"
    doc = json.loads(run(["inspect", "--json", "-"], input=data).stdout)
    defects = [(p["path"], d) for p in doc["parts"] for d in p["defects"]]
    assert defects, doc
    assert doc["defect_count"] == len(defects)
    for _, d in defects:
        assert set(d) == {"name", "offset", "message"}
        assert isinstance(d["offset"], int) and d["name"] and d["message"]
    tree = run(["inspect", "-"], input=data).stdout
    name = defects[0][1]["name"]
    assert f"defect {name} at byte {defects[0][1]['offset']}" in tree


def test_inspect_reads_stdin(message: Path) -> None:
    doc = json.loads(run(["inspect", "--json", "-"], input=message.read_bytes()).stdout)
    assert len(doc["parts"]) == 4


def test_inspect_nested_message_paths() -> None:
    inner = b"Subject: inner\r\nContent-Type: multipart/alternative; boundary=I\r\n\r\n--I\r\n\r\na\r\n--I\r\n\r\nb\r\n--I--\r\n"
    data = multipart(TEXT_PART, b"Content-Type: message/rfc822\r\n\r\n" + inner)
    doc = json.loads(run(["inspect", "--json", "-"], input=data).stdout)
    assert [p["path"] for p in doc["parts"]] == ["1", "1.1", "1.2", "1.2.1", "1.2.1.1", "1.2.1.2"]
    assert [p["depth"] for p in doc["parts"]] == [0, 1, 1, 2, 3, 3]
    assert "subject: inner" in run(["inspect", "-"], input=data).stdout


def test_inspect_escapes_terminal_control_characters() -> None:
    data = multipart(attachment(b"filename*=utf-8''evil%1B%5D0%3Bowned%07%E2%80%AEtxt.exe"))
    out = run(["inspect", "-"], input=data).stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "evil\\x1b]0;owned\\x07\\u202etxt.exe" in out


def test_inspect_errors(tmp_path: Path) -> None:
    assert (
        fails(["inspect", "missing.eml"])
        == "smimekit: error: cannot read missing.eml: no such file or directory"
    )
    assert "is a directory" in fails(["inspect", str(tmp_path)])


# ------------------------------------------------------------------------------------------- extract


def test_extract_saves_attachments(message: Path, tmp_path: Path) -> None:
    out = run(["extract", str(message), "--dir", "out"]).stdout.splitlines()
    assert sorted(os.listdir(tmp_path / "out")) == ["Grüße.txt", "report.pdf"]
    assert (tmp_path / "out" / "report.pdf").read_bytes() == b"%PDF-1.4 fake"
    assert (tmp_path / "out" / "Grüße.txt").read_bytes() == "Grüße".encode("latin-1")
    assert out == [
        "out/report.pdf  13 bytes  application/pdf  part 1.2",
        "out/Grüße.txt  5 bytes  text/plain  part 1.3",
    ]


def test_extract_all_saves_every_leaf(message: Path, tmp_path: Path) -> None:
    run(["extract", str(message), "--dir", "out", "--all"])
    assert sorted(os.listdir(tmp_path / "out")) == ["Grüße.txt", "part-1.1.txt", "report.pdf"]
    assert (tmp_path / "out" / "part-1.1.txt").read_bytes() == "Grüße aus Köln\r\n".encode()


def test_extract_from_stdin(message: Path, tmp_path: Path) -> None:
    run(["extract", "-", "-d", "out"], input=message.read_bytes())
    assert sorted(os.listdir(tmp_path / "out")) == ["Grüße.txt", "report.pdf"]


def test_extract_nothing_to_save(tmp_path: Path) -> None:
    out = run(["extract", "-", "--dir", "out"], input=multipart(TEXT_PART)).stdout
    assert out.startswith("no attachments found")


HOSTILE = {
    b'filename="../../etc/passwd"': "passwd",
    b'filename="/abs/path"': "path",
    b'filename="..\\\\..\\\\windows\\\\win.ini"': "win.ini",
    b'filename="con"': "_con",
    b'filename="NUL.txt"': "_NUL.txt",
    b'filename="lpt1"': "_lpt1",
    b'filename=".."': "part-1.7.bin",
    b'filename="."': "part-1.8.bin",
    b"filename*=utf-8''a%00b%0Ac%0D.txt": "abc.txt",
    b'filename=".bashrc"': "bashrc",
    b'filename="-rf"': "rf",
    b"filename*=utf-8''invoice%E2%80%AEfdp.exe": "invoicefdp.exe",
    b"filename*=utf-8''Cafe%CC%81.txt": "Café.txt",  # NFD in, NFC out
    b'filename="a<b>c:d|e?.txt"': "a_b_c_d_e_.txt",
    b'filename="trailing. . "': "trailing",
    b'filename="' + b"x" * 300 + b'.pdf"': "x" * 196 + ".pdf",
    b'filename="dup.txt"': "dup.txt",
    b'filename="DUP.txt"': "DUP (1).txt",
    b'filename="dup.txt" ': "dup (2).txt",
}


def test_extract_makes_hostile_names_safe(tmp_path: Path) -> None:
    data = multipart(*(attachment(param, str(i).encode()) for i, param in enumerate(HOSTILE)))
    (tmp_path / "in.eml").write_bytes(data)
    (tmp_path / "victim").mkdir()
    run(["extract", "in.eml", "--dir", "victim/out"])
    written = sorted(os.listdir(tmp_path / "victim" / "out"))
    assert written == sorted(HOSTILE.values())
    for i, name in enumerate(HOSTILE.values()):
        assert (tmp_path / "victim" / "out" / name).read_bytes() == str(i).encode()
    # nothing landed anywhere else
    assert sorted(os.listdir(tmp_path)) == ["in.eml", "victim"]
    assert os.listdir(tmp_path / "victim") == ["out"]


def test_extract_never_overwrites_without_force(message: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "Grüße.txt").write_bytes(b"mine")
    line = fails(["extract", str(message), "--dir", "out"])
    assert line == "smimekit: error: out/Grüße.txt already exists; use --force to overwrite it"
    assert (out / "Grüße.txt").read_bytes() == b"mine"
    assert os.listdir(out) == ["Grüße.txt"]  # checked before anything was written
    run(["extract", str(message), "--dir", "out", "--force"])
    assert (out / "Grüße.txt").read_bytes() == "Grüße".encode("latin-1")
    assert sorted(os.listdir(out)) == ["Grüße.txt", "report.pdf"]


def test_extract_does_not_follow_a_planted_symlink(message: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "target").write_bytes(b"precious")
    (out / "report.pdf").symlink_to(tmp_path / "target")
    assert "report.pdf already exists" in fails(["extract", str(message), "--dir", "out"])
    run(["extract", str(message), "--dir", "out", "--force"])
    assert (tmp_path / "target").read_bytes() == b"precious"
    assert not (out / "report.pdf").is_symlink()


def test_extract_streams_a_large_attachment(tmp_path: Path) -> None:
    import base64

    blob = os.urandom(3 * 1024 * 1024 + 17)
    part = (
        b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="big.zip"\r\n\r\n' + base64.encodebytes(blob)
    )
    (tmp_path / "big.eml").write_bytes(multipart(part))
    out = run(["extract", "big.eml", "--dir", "out"]).stdout
    assert f"{len(blob)} bytes" in out
    assert (tmp_path / "out" / "big.zip").read_bytes() == blob
    assert os.listdir(tmp_path / "out") == ["big.zip"]  # no temporary file left behind


def test_extract_errors(message: Path, tmp_path: Path) -> None:
    assert "cannot read missing.eml" in fails(["extract", "missing.eml", "--dir", "out"])
    (tmp_path / "file").write_text("x")
    assert "cannot create directory file/sub" in fails(["extract", str(message), "--dir", "file/sub"])
    assert "Missing option '-d' / '--dir'" in fails(["extract", str(message)])


def test_permission_errors_are_one_line(message: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the tests may run as root, for whom chmod 000 changes nothing: simulate what the OS would say
    import tempfile

    import smimekit.cli._common as common

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    assert (
        fails(["extract", str(message), "--dir", "out"])
        == "smimekit: error: cannot write to out: permission denied"
    )
    assert (
        fails([*BASIC, "--text", "x", "-o", "x.eml"])
        == "smimekit: error: cannot write x.eml: permission denied"
    )
    monkeypatch.setattr(common, "parse_file", denied)
    assert fails(["inspect", str(message)]) == f"smimekit: error: cannot read {message}: permission denied"
