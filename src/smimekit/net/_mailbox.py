"""What the IMAP and POP3 mailboxes share: opening a session with one error mapping, and the session's
common methods."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from ..errors import NetError
from .tls import NETWORK_ERRORS, Endpoint, MailboxServer, describe_failure

__all__ = ["MailboxSession", "Opening"]


class _Connection(Protocol):
    def noop(self) -> object: ...


C = TypeVar("C", bound=_Connection)


class Opening(Generic[C]):
    """A context manager around opening a session: say what is being done in ``doing`` and put the
    connection in ``conn`` as soon as there is one.

    When the block fails, the connection is dropped with ``drop``; a NetError or an exception that is not
    a network error passes unchanged, a network error becomes the NetError of
    :func:`~smimekit.net.tls.describe_failure` for ``doing``.
    """

    def __init__(self, endpoint: Endpoint, drop: Callable[[C], None]) -> None:
        self.endpoint = endpoint
        self.doing = "connecting"
        self.conn: C | None = None
        self._drop = drop

    def __enter__(self) -> Opening[C]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            return
        if self.conn is not None:
            self._drop(self.conn)
        if isinstance(exc, NetError) or not isinstance(exc, NETWORK_ERRORS):
            return  # raised on as it is
        raise describe_failure(exc, endpoint=self.endpoint, doing=self.doing) from None


class MailboxSession(Generic[C]):
    """The part of a logged-in mailbox session that IMAP and POP3 share (``server``, ``_conn``)."""

    server: MailboxServer
    _conn: C

    def _fail(self, exc: BaseException, doing: str) -> NetError:
        return describe_failure(exc, endpoint=self.server.endpoint, doing=doing)

    def alive(self) -> bool:
        """Whether the session still answers (NOOP)."""
        try:
            self._conn.noop()
        except NETWORK_ERRORS:
            return False
        return True

    def __enter__(self) -> Self:
        return self
