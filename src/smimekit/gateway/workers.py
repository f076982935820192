"""Rendering in worker processes (``processes = N``): the signing and encryption of several messages at
once, on several cores, where threads would share one interpreter lock.

Each worker process holds its own :class:`~smimekit.gateway.process.Processor` (its own store connection,
its own cache of decrypted keys). It reads the spooled message from its path and hands back the decision
and the rendered copies: small copies as bytes, large ones as private files in the spool directory (hard
links to the worker's temporary files) that the gateway deletes as soon as it has opened them. Errors come back as exceptions of the same kind, so the
SMTP reply is the same as when rendering in threads.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import multiprocessing
import os
import pickle
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from smimekit.errors import CryptoError, KeyLoadError, MimeError, SmimekitError, StoreError, StoreLockedError
from smimekit.gateway.decide import Copy, Decision, Envelope
from smimekit.gateway.policy import Policy
from smimekit.gateway.process import Processed, Processor

__all__ = ["ProcessRenderer"]

_processor: Processor | None = None


def _init(
    policy: Policy, location: str | None, timeout: float, passphrase: bytes | None, directory: str
) -> None:
    global _processor
    from smimekit.gateway.harvest import harvest_report
    from smimekit.store import open_store

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway decides when to stop, not Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def new_output() -> IO[bytes]:
        return tempfile.NamedTemporaryFile(prefix="out-", dir=directory, delete=True)

    _processor = Processor(
        policy,
        open_store=lambda: open_store(location, timeout=timeout),
        passphrase=passphrase,
        new_output=new_output,
        harvest=harvest_report,
    )


@dataclass(frozen=True)
class _Rendered:
    decision: Decision
    envelope: Envelope
    queue_id: str | None
    outputs: tuple[tuple[Copy, bytes | str], ...]
    """Each copy with its bytes, or the path of the private file holding it."""
    notes: tuple[str, ...]


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else an exception of the nearest kind with the same text."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        pass
    text = str(exc)
    for cls in (StoreLockedError, StoreError, KeyLoadError):
        if isinstance(exc, cls):
            return cls(text)
    for plain in (MimeError, CryptoError, SmimekitError):
        if isinstance(exc, plain):
            return plain(text)
    return RuntimeError(f"{type(exc).__name__}: {text}")


def _render(path: str, envelope: Envelope, queue_id: str | None) -> _Rendered | BaseException:
    assert _processor is not None, "the worker was not initialized"
    try:
        done = _processor.process(Path(path), envelope, queue_id=queue_id)
    except Exception as exc:
        return _portable(exc)
    outputs: list[tuple[Copy, bytes | str]] = []
    try:
        for copy, f in done.outputs:
            if isinstance(f, io.BytesIO):
                outputs.append((copy, f.getvalue()))
            else:
                f.flush()
                kept = f"{f.name}.done"
                os.link(f.name, kept)  # outlives the temporary file: the gateway deletes it
                outputs.append((copy, kept))
    except BaseException:
        for _, data in outputs:
            if isinstance(data, str):
                with contextlib.suppress(OSError):
                    os.unlink(data)
        raise
    finally:
        done.close()
    return _Rendered(done.decision, done.envelope, done.queue_id, tuple(outputs), tuple(done.notes))


class ProcessRenderer:
    """A pool of ``processes`` worker processes (started fresh with ``spawn``, not forked from a process
    that runs threads)."""

    def __init__(
        self,
        policy: Policy,
        *,
        processes: int,
        location: str | None,
        timeout: float,
        passphrase: bytes | None,
        directory: Path,
    ) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=(policy, location, timeout, passphrase, str(directory)),
        )

    def process(self, path: Path, envelope: Envelope, *, queue_id: str | None = None) -> Processed:
        """As :meth:`Processor.process`, in a worker process; raises what it would raise."""
        result = self._pool.submit(_render, str(path), envelope, queue_id).result()
        if isinstance(result, BaseException):
            raise result
        done = Processed(result.decision, result.envelope, result.queue_id, notes=list(result.notes))
        try:
            for copy, data in result.outputs:
                if isinstance(data, bytes):
                    done.outputs.append((copy, io.BytesIO(data)))
                else:
                    f = open(data, "rb")  # noqa: SIM115 - closed by Processed.close()
                    os.unlink(data)  # readable until closed, gone from the spool already
                    done.outputs.append((copy, f))
        except BaseException:
            done.close()
            for _, data in result.outputs:
                if isinstance(data, str):
                    with contextlib.suppress(OSError):
                        os.unlink(data)
            raise
        return done

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
