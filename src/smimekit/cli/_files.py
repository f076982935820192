"""Saving decoded bodies under names taken from a message, safely.

A name from a message is hostile until proven otherwise: it may climb out of the target directory
(``../../etc/passwd``, ``/abs/path``), hide itself (``.bashrc``), look like an option (``-rf``), carry
control or bidi-override characters, or be a reserved device name on Windows (``con``, ``nul.txt``).
"""

from __future__ import annotations

import contextlib
import errno
import mimetypes
import os
import re
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import BinaryIO

from ..errors import UsageError
from ._common import reason

__all__ = ["MAX_NAME_BYTES", "extension_for", "safe_filename", "unique_name", "write_new_file"]

MAX_NAME_BYTES = 200
"""Longest name written (bytes of UTF-8), leaving room for a `` (n)`` suffix under the usual 255."""

_RESERVED = frozenset(
    {"con", "prn", "aux", "nul", "conin$", "conout$"}
    | {f"{dev}{n}" for dev in ("com", "lpt") for n in (*"123456789", "¹", "²", "³")}
)
_SEPARATORS = re.compile(r"[/\\]")
_WINDOWS_FORBIDDEN = str.maketrans(dict.fromkeys('<>:"|?*', "_"))
_DROPPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_EXTENSIONS = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/calendar": ".ics",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "application/octet-stream": ".bin",
    "application/pdf": ".pdf",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "application/pkcs7-mime": ".p7m",
    "application/x-pkcs7-mime": ".p7m",
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
}


def extension_for(content_type: str) -> str:
    """A file name extension for a media type (``.bin`` when nothing better is known)."""
    ext = _EXTENSIONS.get(content_type) or mimetypes.guess_extension(content_type, strict=False)
    return ext if ext and re.fullmatch(r"\.[A-Za-z0-9]{1,8}", ext) else ".bin"


def safe_filename(name: str | None, *, fallback: str) -> str:
    """A harmless file name made from ``name``, or ``fallback`` when nothing usable is left.

    NFC-normalised; only the last path component (``/`` and ``\\`` both separate); control, format
    (bidi overrides, zero-width), unassigned and private-use characters dropped; characters Windows forbids
    replaced by ``_``; leading dots, dashes and spaces and trailing dots and spaces stripped (so ``..`` and
    hidden names cannot result); reserved device names prefixed with ``_``; cut to :data:`MAX_NAME_BYTES`
    keeping the extension.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = _SEPARATORS.split(text)[-1]
    kept = []
    for c in text:
        cat = unicodedata.category(c)
        if cat in _DROPPED_CATEGORIES:
            continue
        kept.append(" " if cat == "Zs" else c)
    text = "".join(kept).translate(_WINDOWS_FORBIDDEN)
    text = text.lstrip(" .-").rstrip(" .")
    if not text:
        return fallback
    if text.split(".", 1)[0].rstrip(" ").lower() in _RESERVED:
        text = "_" + text
    return _shorten(text, MAX_NAME_BYTES)


def _shorten(name: str, limit: int) -> str:
    if len(name.encode("utf-8")) <= limit:
        return name
    stem, ext = os.path.splitext(name)
    if len(ext.encode("utf-8")) > limit // 4:
        stem, ext = name, ""
    budget = limit - len(ext.encode("utf-8"))
    cut = stem.encode("utf-8")[:budget].decode("utf-8", "ignore").rstrip(" .")
    return (cut or "_") + ext


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name (1).ext``, ``name (2).ext``, ... whichever is not in ``taken`` (compared
    case-insensitively, as some file systems do); the result is added to ``taken``."""
    candidate = name
    stem, ext = os.path.splitext(name)
    n = 0
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{stem} ({n}){ext}"
    taken.add(candidate.casefold())
    return candidate


def write_new_file(directory: Path, name: str, data: BinaryIO, *, overwrite: bool) -> int:
    """Copy ``data`` into ``directory/name`` atomically and return the bytes written.

    The bytes go to a private temporary file in ``directory`` first, so a reader never sees half a file.
    Without ``overwrite``, an existing file (or link) of that name is never replaced, even one that
    appears while we write: a :class:`~smimekit.errors.UsageError` names it instead.
    """
    target = directory / name
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".smimekit-", suffix=".part")
    except OSError as exc:
        raise UsageError(f"cannot write to {directory}: {reason(exc)}") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(data, f, 1 << 20)
            size = f.tell()
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
    except FileExistsError as exc:
        raise UsageError(f"{target} already exists; use --force to overwrite it") from exc
    except OSError as exc:
        raise UsageError(f"cannot write {target}: {reason(exc)}") from exc
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return size


def _link_no_clobber(tmp: str, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless that name exists (atomically where links work)."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links: check, then rename (a small window, but no better exists)
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from exc
        os.replace(tmp, target)
