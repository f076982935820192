"""Opening the store named on the command line, for every command that uses it (keys, sign, encrypt, ca,
gateway): ``--store`` after the command, else ``smimekit --store``, else ``$SMIMEKIT_STORE``, else the
default file in the user's data directory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ._common import state

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["cli_store_location", "open_cli_store"]


def cli_store_location() -> str | None:
    """The store location the command line names (None: the default one).

    click's ``Path`` type turns ``postgresql://host/db`` into ``postgresql:/host/db``: a URL from
    ``$SMIMEKIT_STORE`` is given back as written (``open_store`` repairs one given with ``--store``).
    """
    where = state().store
    if where is None:
        return None
    env = os.environ.get("SMIMEKIT_STORE")
    if env and Path(env) == Path(where):
        return env
    return os.fspath(where)


@contextlib.contextmanager
def open_cli_store() -> Iterator[Store]:
    """The store of the running command, closed when the block ends. Its errors (StoreSchemaError,
    StoreLockedError, StoreError) carry the location and become one line and exit code 2."""
    from ..store import open_store  # the store's backends load only when a command needs them

    with open_store(cli_store_location()) as store:
        yield store
