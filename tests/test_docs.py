"""The examples in docs/*.md and README.md run, so they cannot rot.

In each file, in order and in one empty working directory:

- every ```python block runs; the blocks of one file share a namespace;
- every ```console block runs its ``$ smimekit ...`` commands (a line ending in ``\\`` continues on the
  next). A command runs through click's CliRunner, or through the shell and the installed console script
  when it holds a pipe or a redirection. The lines after a command are its expected output: each must
  match a line of the real output, in order (other lines may come between); ``...`` in a line matches
  anything, and a line that is only ``...`` is skipped. The command must exit 0, or non-zero when an
  expected line starts with ``smimekit: error:``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from smimekit.cli.main import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
SHELL_CHARS = re.compile(r"[|<>;&`$()]")


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    line: int


@dataclass(frozen=True)
class Command:
    line: str
    expected: tuple[str, ...]
    where: str


def blocks(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    return [
        Block(m.group("lang"), m.group("body"), text.count("\n", 0, m.start()) + 1)
        for m in FENCE.finditer(text)
    ]


def commands(block: Block, path: Path) -> list[Command]:
    """The ``$ smimekit`` commands of a console block with the output lines shown after each."""
    out: list[Command] = []
    current: list[str] | None = None
    expected: list[str] = []
    start = 0
    lines = block.body.splitlines()
    i = 0

    def flush() -> None:
        if current is not None:
            out.append(Command(" ".join(current), tuple(expected), f"{path.name}:{start}"))

    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            flush()
            current, expected, start = [], [], block.line + 1 + i
            cmd = line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                current.append(cmd[:-1].strip())
                i += 1
                cmd = lines[i].strip()
            current.append(cmd.strip())
        elif current is not None:
            expected.append(line)
        i += 1
    flush()
    return [c for c in out if c.line.split(maxsplit=1)[0] == "smimekit"]


def _pattern(expected: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(piece) for piece in expected.rstrip().split("...")) + r"\Z")


def check_output(cmd: Command, output: str) -> None:
    actual = [line.rstrip() for line in output.splitlines()]
    pos = 0
    for want in cmd.expected:
        if want.strip() in ("", "..."):
            continue
        pattern = _pattern(want)
        while pos < len(actual) and not pattern.match(actual[pos]):
            pos += 1
        assert pos < len(actual), (
            f"{cmd.where}: `{cmd.line}` did not print {want!r} (in order); it printed:\n{output}"
        )
        pos += 1


def _script() -> str:
    found = shutil.which("smimekit") or str(Path(sys.executable).with_name("smimekit"))
    assert Path(found).exists(), "the smimekit console script is not installed (pip install -e .)"
    return found


def run_command(cmd: Command) -> None:
    wants_error = any(line.startswith("smimekit: error:") for line in cmd.expected)
    if SHELL_CHARS.search(cmd.line):
        env = dict(os.environ)
        env["PATH"] = os.pathsep.join((str(Path(_script()).parent), env.get("PATH", "")))
        env.setdefault("COLUMNS", "200")
        proc = subprocess.run(
            cmd.line, shell=True, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        code, output = proc.returncode, proc.stdout + proc.stderr
    else:
        result = CliRunner().invoke(cli, shlex.split(cmd.line)[1:], catch_exceptions=False)
        code, output = result.exit_code, result.output
    assert (code != 0) == wants_error, f"{cmd.where}: `{cmd.line}` exited {code}:\n{output}"
    check_output(cmd, output)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs.{path.stem}"}
    for block in blocks(path):
        if block.lang == "python":
            code = compile("\n" * block.line + block.body, str(path), "exec")
            exec(code, namespace)
        elif block.lang == "console":
            for cmd in commands(block, path):
                run_command(cmd)


def test_the_guide_has_examples_of_both_kinds() -> None:
    found = {(p.name, b.lang) for p in DOCS for b in blocks(p)}
    assert ("library.md", "python") in found
    assert ("cli.md", "console") in found
    assert ("getting-started.md", "console") in found
    assert sum(len(commands(b, p)) for p in DOCS for b in blocks(p) if b.lang == "console") >= 10


def test_the_checker_catches_rot() -> None:
    cmd = Command("smimekit x", ("alpha", "be...ta", "..."), "here")
    check_output(cmd, "alpha\nnoise\nbeXXta\n")
    with pytest.raises(AssertionError):
        check_output(cmd, "beXXta\nalpha\n")  # wrong order
    with pytest.raises(AssertionError):
        check_output(Command("smimekit x", ("gamma",), "here"), "alpha\n")
