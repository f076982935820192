"""MIME commands: ``compose``, ``inspect`` and ``extract``.

``smimekit send`` composes with the same body options (:func:`body_options`, :func:`body_text`,
:func:`attachments`). This module loads no crypto: ``inspect`` stays quick.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import click

from ..errors import UsageError
from ..mime import Entity, Message
from ..mime.build import Attachment
from ..mime.build import compose as compose_message
from . import _files
from ._common import STDIO, F, atomic_output, open_message, read_bytes, read_text, reason
from ._render import describe, make_console, numbered, render_tree, safe_text, to_json

__all__ = ["attachments", "body_options", "body_text", "compose", "extract", "inspect"]

_FILE = click.Path(dir_okay=False, allow_dash=True)


# ---------------------------------------------------------------------------------------------- compose


def attachments(paths: Sequence[str], *, inline: bool) -> list[Attachment]:
    """The files as attachments, named after their base names (``-``: stdin, named ``stdin``).

    Raises UsageError when a file cannot be read.
    """
    out = []
    for path in paths:
        data = read_bytes(path, what="inline file" if inline else "attachment")
        name = "stdin" if path == STDIO else Path(path).name
        if inline:
            out.append(Attachment(data, name, disposition="inline", content_id=name))
        else:
            out.append(Attachment(data, name))
    return out


def body_options(command: F) -> F:
    """--text, --text-file and --attach: the body and the files of a message being composed (read them
    with :func:`body_text` and :func:`attachments`)."""
    command = click.option(
        "--attach", metavar="FILE", type=_FILE, multiple=True, help="Attach a file (repeat for more)."
    )(command)
    command = click.option(
        "--text-file", metavar="FILE", type=_FILE, help="Read the plain-text body from a UTF-8 file."
    )(command)
    return click.option("--text", metavar="TEXT", help="The plain-text body.")(command)


def body_text(text: str | None, text_file: str | None) -> str:
    """The body given by exactly one of --text or --text-file (``-``: stdin).

    Raises click.UsageError when neither or both are given, UsageError when the file cannot be read or is
    not UTF-8.
    """
    if (text is None) == (text_file is None):
        raise click.UsageError("give the body with exactly one of --text or --text-file")
    return text if text is not None else read_text(text_file or STDIO, what="text file")


@click.command()
@click.option(
    "--from", "from_", metavar="ADDR", required=True, help="The sender, e.g. 'Alice <alice@example.com>'."
)
@click.option("--to", metavar="ADDR", multiple=True, required=True, help="A recipient (repeat for more).")
@click.option("--cc", metavar="ADDR", multiple=True, help="A copy recipient (repeat for more).")
@click.option("--subject", metavar="TEXT", required=True, help="The subject (any language).")
@body_options
@click.option(
    "--html-file", metavar="FILE", type=_FILE, help="Add an HTML alternative read from a UTF-8 file."
)
@click.option(
    "--inline",
    metavar="FILE",
    type=_FILE,
    multiple=True,
    help="Add an image for the HTML; refer to it as cid:NAME, NAME being the file name (repeatable).",
)
@click.option(
    "--charset",
    metavar="NAME",
    default="utf-8",
    show_default=True,
    help="Charset of the text and HTML parts, e.g. iso-8859-1, windows-1252, iso-2022-jp.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=_FILE,
    default=STDIO,
    help="Where to write the message (default: stdout).",
)
def compose(
    from_: str,
    to: tuple[str, ...],
    cc: tuple[str, ...],
    subject: str,
    text: str | None,
    text_file: str | None,
    html_file: str | None,
    attach: tuple[str, ...],
    inline: tuple[str, ...],
    charset: str,
    output: str,
) -> None:
    """Compose a new message and write it to stdout or a file.

    Give the body with --text or --text-file; --html-file adds an HTML version shown by mail programs that
    can, with the images from --inline. Non-ASCII names, subjects and file names are encoded as the
    standards require; the Date and Message-ID are set for you.
    """
    body = body_text(text, text_file)
    html = read_text(html_file, what="HTML file") if html_file is not None else None
    msg = compose_message(
        from_=from_,
        to=to,
        cc=cc,
        subject=subject,
        text=body,
        html=html,
        attachments=tuple(attachments(attach, inline=False)),
        inline=tuple(attachments(inline, inline=True)),
        charset=charset,
    )
    with atomic_output(output) as out:
        msg.write_to(out)


# ---------------------------------------------------------------------------------------------- inspect


@click.command()
@click.argument("file", type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON document instead of a tree.")
def inspect(file: str, as_json: bool) -> None:
    """Show the structure of the message in FILE.

    Prints From, To, Subject and Date, then every MIME part as a tree: content type, charset, transfer
    encoding, decoded size, disposition, file name, Content-ID and any defects found while parsing.
    With --json, prints the same as a JSON document whose "parts" list has one entry per part.
    """
    with open_message(file) as msg:
        parts = describe(msg)
        if as_json:
            click.echo(json.dumps(to_json(msg, parts), indent=2, ensure_ascii=False))
        else:
            render_tree(msg, make_console(), parts)


# ---------------------------------------------------------------------------------------------- extract


def _wanted(entity: Entity, *, every_leaf: bool) -> bool:
    if entity.is_multipart():
        return False
    if entity.filename is not None or entity.disposition == "attachment":
        return True
    return every_leaf and not entity.children


@click.command()
@click.argument("file", type=_FILE)
@click.option(
    "-d",
    "--dir",
    "directory",
    metavar="DIR",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to save into (created when missing).",
)
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@click.option("--all", "every_leaf", is_flag=True, help="Save every part with content, not only attachments.")
def extract(file: str, directory: Path, force: bool, every_leaf: bool) -> None:
    """Save the attachments of the message in FILE into a directory.

    Files are named after the attachment's decoded file name, made safe: no directories, control
    characters, leading dots or dashes, or device names such as 'con'; a name used twice becomes
    "name (1).ext"; a part without a name is saved as "part-PATH.EXT" (PATH as shown by 'smimekit
    inspect'). Existing files are never overwritten unless --force is given. Prints one line per file
    written.
    """
    with open_message(file) as msg:
        plan = _plan(msg, every_leaf=every_leaf)
        if not plan:
            click.echo("no attachments found" + ("" if every_leaf else " (use --all to save every part)"))
            return
        if not force:
            for _, _, name in plan:
                if os.path.lexists(directory / name):
                    raise UsageError(f"{directory / name} already exists; use --force to overwrite it")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"cannot create directory {directory}: {reason(exc)}") from exc
        for path, entity, name in plan:
            with entity.decoded_stream() as data:
                size = _files.write_new_file(directory, name, data, overwrite=force)
            line = f"{directory / name}  {size} bytes  {entity.content_type}  part {path}"
            if entity.filename is not None and entity.filename != name:
                line += f' (named "{entity.filename}" in the message)'
            click.echo(safe_text(line))


def _plan(msg: Message, *, every_leaf: bool) -> list[tuple[str, Entity, str]]:
    """``(path, entity, file name)`` of each part to save; the names are safe and distinct."""
    taken: set[str] = set()
    plan = []
    for path, entity in numbered(msg):
        if not _wanted(entity, every_leaf=every_leaf):
            continue
        fallback = f"part-{path}{_files.extension_for(entity.content_type)}"
        name = _files.unique_name(_files.safe_filename(entity.filename, fallback=fallback), taken)
        plan.append((path, entity, name))
    return plan
