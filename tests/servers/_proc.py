"""Starting and stopping a server process that the harness owns, and cleaning up what it left behind."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

# stop() of every server still running, so that an interrupted test run leaves no daemon behind
_running: dict[int, Callable[[], None]] = {}


def register(owner: object, stop: Callable[[], None]) -> None:
    """Call ``stop`` at interpreter exit unless ``unregister(owner)`` was called first."""
    _running[id(owner)] = stop


def unregister(owner: object) -> None:
    """Forget the exit-time ``stop`` of ``owner`` (it stopped)."""
    _running.pop(id(owner), None)


@atexit.register
def _stop_all() -> None:
    for stop in list(_running.values()):
        with contextlib.suppress(Exception):
            stop()
    _running.clear()


def group_members(pgid: int) -> list[int]:
    """The ids of the live processes whose process group is ``pgid`` (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def is_running(pid: int) -> bool:
    """True when ``pid`` is a live process (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for all ``pids`` to exit; True when they did."""
    deadline = time.monotonic() + timeout
    while any(is_running(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def kill_group_leftovers(pgid: int, *, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL, every process still in the group ``pgid`` (a group this harness created)."""
    members = group_members(pgid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        if wait_gone(members, grace):
            return
        members = group_members(pgid)


def stop_process(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """Stop a child started with ``start_new_session=True``: SIGTERM, wait, SIGKILL; reap; clear its group."""
    pgid = proc.pid
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    kill_group_leftovers(pgid)
