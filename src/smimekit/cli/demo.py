"""``smimekit demo``: runs the steps of :mod:`smimekit.demo` and shows what each one did."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.text import Text

from .. import demo as demo_lib
from ..errors import UsageError
from ._common import reason
from ._render import make_console, render_tree

__all__ = ["demo"]


@click.command()
@click.option(
    "--out-dir",
    metavar="DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to write the demo's files (default: a new temporary directory, which is kept).",
)
def demo(out_dir: Path | None) -> None:
    """Show what smimekit does on a realistic message.

    Composes a message with non-ASCII text in three charsets, an HTML version with an inline image, a PDF
    and an audio attachment; writes it to a file; parses it back, checks that it reads back byte for byte
    and that every part decodes to what was put in; and prints its structure. Then makes a throwaway CA
    with certificates for the sender and the recipient, signs the message and encrypts it, and decrypts
    and verifies it again as the recipient.
    """
    if out_dir is None:
        out_dir = Path(tempfile.mkdtemp(prefix="smimekit-demo-"))
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create directory {out_dir}: {reason(exc)}") from exc
    console = make_console()
    console.print(f"smimekit demo: writing into {out_dir}", highlight=False)
    ctx = demo_lib.DemoContext(out_dir=out_dir)
    steps = demo_lib.STEPS
    message_path: Path | None = None
    written: dict[str, Path] = {}
    try:
        for number, result in enumerate(demo_lib.run(ctx, steps), 1):
            console.print()
            console.print(Text(f"[{number}/{len(steps)}] {result.title}", style="bold"))
            for line in result.lines:
                console.print(f"  {line}", markup=False, highlight=False)
            if result.message is not None:
                console.print()
                render_tree(result.message, console)
            message_path = ctx.written.get("message", message_path)
            written = dict(ctx.written)
    finally:
        ctx.close()
    if message_path is not None:
        console.print()
        console.print("Try next:", style="bold")
        console.print(f"  smimekit inspect {message_path}", markup=False, highlight=False)
        console.print(
            f"  smimekit extract {message_path} --dir {out_dir / 'attachments'}",
            markup=False,
            highlight=False,
        )
    if {"ca", "signed", "sealed", "recipient_cert", "recipient_key"} <= written.keys():
        for line in (
            f"  smimekit verify --trust {written['ca']} {written['signed']}",
            f"  smimekit open --cert {written['recipient_cert']} --key {written['recipient_key']} "
            f"--trust {written['ca']} {written['sealed']}",
        ):
            console.print(line, markup=False, highlight=False)
