"""One JSON line per message: who, what was done, the SMTP answer and how long it took."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["MessageLog", "Record", "postfix_queue_id"]

# Postfix's own Received field: "... by mx.example.org (Postfix) with ESMTP id 4Fq3xY1z2Kz9; Sat, ..."
_QUEUE_ID = re.compile(rb"\(Postfix[^)]*\)[^;]*?\bid\s+([0-9A-Za-z]+)")


def postfix_queue_id(received: Sequence[bytes]) -> str | None:
    """The queue id in the topmost Received field Postfix wrote (the raw field values), or None."""
    for value in received[:3]:
        m = _QUEUE_ID.search(b" ".join(value.split()))
        if m:
            return m.group(1).decode("ascii")
    return None


@dataclass(frozen=True)
class Record:
    """What is logged about one message."""

    id: str
    queue_id: str | None
    sender: str
    recipients: tuple[str, ...]
    direction: str
    actions: tuple[str, ...]
    result: str
    ms: float
    size: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "id": self.id,
            "queue_id": self.queue_id,
            "sender": self.sender,
            "recipients": list(self.recipients),
            "direction": self.direction,
            "action": list(self.actions),
            "result": self.result,
            "ms": round(self.ms, 1),
            "size": self.size,
            "detail": self.detail,
        }


class MessageLog:
    """Writes records to ``stream`` (stderr by default), one line each, whole lines from any thread."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, record: Record) -> None:
        line = json.dumps(record.to_dict(), ensure_ascii=True, separators=(",", ":"))
        with self._lock:
            out = self._stream or sys.stderr
            try:
                out.write(line + "\n")
                out.flush()
            except (OSError, ValueError):  # a closed log must not fail mail delivery
                pass

    def event(self, message: str, **fields: Any) -> None:
        """A line about the gateway itself (start, drain, stop)."""
        data = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "event": message,
            **fields,
        }
        with self._lock:
            out = self._stream or sys.stderr
            try:
                out.write(json.dumps(data, ensure_ascii=True, separators=(",", ":"), default=str) + "\n")
                out.flush()
            except (OSError, ValueError):
                pass
