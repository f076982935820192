"""``smimekit demo``: the command, the files it generates, and the real console script."""

from __future__ import annotations

import io
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import wave
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from smimekit import demo
from smimekit.cli.main import cli
from smimekit.mime import parse_file

EXPECTED_IN_OUTPUT = (
    "[1/4] Compose a message",
    "[2/4] Parse it back",
    "[3/4] Sign and encrypt it",
    "[4/4] Decrypt and verify it",
    "application/pkcs7-mime, base64, ",
    '"smime.p7m"',
    "AES-256-GCM, key agreement, authenticated",
    "signature of juergen@example.com: intact, valid and trusted",
    "the signer matches From: yes; unsigned parts: none",
    "re-serialized byte-exact",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/related",
    "text/plain, charset=utf-8",
    "text/html, charset=utf-8",
    "image/png, base64, ",
    f"<{demo.LOGO_CID}>",
    "text/plain, charset=iso-8859-1",
    '"Notiz für Taro.txt"',
    "text/plain, charset=iso-2022-jp",
    '"予定.txt"',
    "application/pdf, base64, ",
    '"Bericht.pdf"',
    "audio/wav, base64, ",
    '"Sprachnachricht.wav"',
    f"Subject: {demo.SUBJECT}",
    f"From: {demo.SENDER}",
    "0 defects",
)


def test_demo_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--out-dir", str(tmp_path / "d")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for text in EXPECTED_IN_OUTPUT:
        assert text in result.output, text
    path = tmp_path / "d" / "demo.eml"
    assert f"wrote {path} (" in result.output
    assert f"smimekit inspect {path}" in result.output
    with parse_file(path) as msg:
        assert msg.to_bytes() == path.read_bytes()
        assert [e.content_type for e in msg.walk()] == [
            "multipart/mixed",
            "multipart/alternative",
            "text/plain",
            "multipart/related",
            "text/html",
            "image/png",
            "text/plain",
            "text/plain",
            "application/pdf",
            "audio/wav",
        ]


def test_demo_tree_matches_inspect(tmp_path: Path) -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["demo", "--out-dir", str(tmp_path)], catch_exceptions=False).output
    tree = runner.invoke(cli, ["inspect", str(tmp_path / "demo.eml")], catch_exceptions=False).output
    assert tree in shown


def test_demo_defaults_to_a_new_temporary_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    made = [p for p in tmp_path.iterdir() if p.name.startswith("smimekit-demo-")]
    assert len(made) == 1
    assert f"smimekit demo: writing into {made[0]}" in result.output
    assert (made[0] / "demo.eml").is_file()


def test_demo_bad_out_dir(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--out-dir", str(tmp_path / "f" / "sub")])
    assert result.exit_code == 2
    assert result.stderr.startswith("smimekit: error: cannot create directory ")
    assert len(result.stderr.splitlines()) == 1


def test_demo_steps_are_extensible(tmp_path: Path) -> None:
    seen = []

    def extra(ctx: demo.DemoContext) -> demo.StepResult:
        seen.append(ctx.written["message"])
        return demo.StepResult("Extra", ("did more",))

    ctx = demo.DemoContext(out_dir=tmp_path)
    try:
        titles = [r.title for r in demo.run(ctx, (*demo.STEPS, demo.Step("extra", extra)))]
    finally:
        ctx.close()
    assert titles == [
        "Compose a message",
        "Parse it back",
        "Sign and encrypt it",
        "Decrypt and verify it",
        "Extra",
    ]
    assert seen == [tmp_path / "demo.eml"]


def test_demo_sign_encrypt_files_work_with_the_commands(tmp_path: Path) -> None:
    """The files the demo leaves behind are real: the commands it suggests succeed on them."""
    runner = CliRunner()
    result = runner.invoke(cli, ["demo", "--out-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in (
        "ca.pem",
        "juergen.crt",
        "juergen.key",
        "taro.crt",
        "taro.key",
        "demo-signed.eml",
        "demo-sealed.eml",
    ):
        assert (tmp_path / name).is_file(), name
    assert (tmp_path / "taro.key").stat().st_mode & 0o077 == 0
    verify = f"smimekit verify --trust {tmp_path / 'ca.pem'} {tmp_path / 'demo-signed.eml'}"
    opened = (
        f"smimekit open --cert {tmp_path / 'taro.crt'} --key {tmp_path / 'taro.key'} "
        f"--trust {tmp_path / 'ca.pem'} {tmp_path / 'demo-sealed.eml'}"
    )
    assert verify in result.output and opened in result.output
    for line in (verify, opened):
        run = runner.invoke(cli, line.split()[1:], catch_exceptions=False)
        assert run.exit_code == 0, run.output
        assert "OK: every signature is intact, valid and trusted" in run.output
    sealed = (tmp_path / "demo-sealed.eml").read_bytes()
    assert b"smime-type=authEnveloped-data" in sealed and "東京".encode() not in sealed


def test_demo_signing_uses_the_context_date(tmp_path: Path) -> None:
    import datetime as dt

    when = dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC)
    ctx = demo.DemoContext(out_dir=tmp_path, date=when)
    try:
        results = list(demo.run(ctx))
    finally:
        ctx.close()
    assert results[-1].title == "Decrypt and verify it"
    cert = ctx.pki["sender"].certificate
    assert cert.not_valid_before_utc == when - dt.timedelta(days=1)


# ------------------------------------------------------------------------------------------- the files


def test_png_is_valid() -> None:
    data = demo.make_png(16)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body), tag
        chunks.append((tag, body))
        pos += 12 + length
    assert [t for t, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">IIBBBBB", chunks[0][1]) == (16, 16, 8, 2, 0, 0, 0)
    assert len(zlib.decompress(chunks[1][1])) == 16 * (1 + 16 * 3)


def test_pdf_is_valid() -> None:
    data = demo.make_pdf()
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    startxref = int(re.search(rb"startxref\n(\d+)\n", data).group(1))  # type: ignore[union-attr]
    assert data[startxref:].startswith(b"xref\n0 6\n")
    entries = data[startxref + len(b"xref\n0 6\n") :].split(b"trailer")[0]
    assert len(entries) == 6 * 20  # every entry is exactly 20 bytes
    for number in range(1, 6):
        offset = int(entries[number * 20 : number * 20 + 10])
        assert data[offset:].startswith(b"%d 0 obj\n" % number)
    length = int(re.search(rb"/Length (\d+)", data).group(1))  # type: ignore[union-attr]
    stream = data.split(b"stream\n", 1)[1].split(b"\nendstream", 1)[0]
    assert len(stream) == length
    assert b"(Bericht aus K\\366ln)" in stream


def test_wav_is_valid() -> None:
    with wave.open(io.BytesIO(demo.make_wav(0.25, 8000))) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 8000, 2000)


def test_built_message_round_trips() -> None:
    msg = demo.build_message()
    data = msg.to_bytes()
    from smimekit.mime import parse

    again = parse(data)
    assert again.to_bytes() == data
    by_name = {e.filename: e for e in again.walk() if e.filename}
    for f in demo.demo_files():
        assert by_name[f.filename].decoded() == f.data


# ------------------------------------------------------------------------------------------- console script


def test_console_script_runs_the_demo(tmp_path: Path) -> None:
    script = shutil.which("smimekit") or str(Path(sys.executable).with_name("smimekit"))
    assert Path(script).exists(), "the smimekit console script is not installed (pip install -e .)"
    proc = subprocess.run(
        [script, "demo", "--out-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "re-serialized byte-exact" in proc.stdout
    assert "[4/4] Decrypt and verify it" in proc.stdout
    assert (tmp_path / "demo.eml").is_file()
    proc = subprocess.run(
        [script, "inspect", str(tmp_path / "missing")], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"smimekit: error: cannot read {tmp_path / 'missing'}: no such file or directory"
    ]
