"""What the server harnesses share: a run directory the servers' own users can reach, the mail user, tools.

Servers started as root drop privileges (Dovecot's mail processes, Postfix's daemons), so the files they
read at run time must lie in a directory every user can traverse. pytest's ``tmp_path`` sits below a 0700
directory, hence ``run_dir()``: a short, private-by-name, world-traversable directory in /tmp (short also
because UNIX socket paths are limited to 107 bytes).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def which(tool: str) -> str | None:
    """The path of ``tool`` on $PATH or in the sbin directories (often not on a user's $PATH)."""
    found = shutil.which(tool)
    if found:
        return found
    for d in SBIN:
        p = Path(d) / tool
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def run_dir(prefix: str) -> Path:
    """A new directory ``/tmp/<prefix>XXXX`` that every user may traverse (mode 0755)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it; a missing path is fine."""
    shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class MailUser:
    """The unprivileged account that owns delivered mail."""

    name: str
    uid: int
    gid: int
    group: str


def mail_user() -> MailUser:
    """The user for mailboxes: the current user when not root; as root ``vmail`` (created when missing)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return MailUser(me.pw_name, me.pw_uid, me.pw_gid, grp.getgrgid(me.pw_gid).gr_name)
    deadline = time.monotonic() + 30
    while True:
        try:
            entry = pwd.getpwnam("vmail")
            return MailUser(entry.pw_name, entry.pw_uid, entry.pw_gid, grp.getgrgid(entry.pw_gid).gr_name)
        except KeyError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the user vmail is not available and useradd could not create it")
        # -U makes a group of the same name; when another process creates it at the same time, useradd
        # fails on the lock or the name, and the next look-up finds the user
        subprocess.run(
            ["useradd", "-r", "-U", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", "vmail"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
        time.sleep(0.1)


def tail(path: Path, lines: int = 30) -> str:
    """The last ``lines`` lines of a text file, or a note that it does not exist."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def read_log(path: Path) -> str:
    """All of the text file ``path`` (a server's log), or "" when it does not exist (yet)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
