"""Turning exceptions into one line on stderr and an exit code: the one place where the CLI does that.

Exit codes: 0 success; 1 a verdict was negative (a signature did not verify, a message could not be
decrypted) or an operation was aborted; 2 usage or input error (bad option, missing file, malformed
input, anything else smimekit raises on purpose); 70 an internal error (a bug: one line all the same,
the traceback with SMIMEKIT_DEBUG=1); 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from ..errors import DecryptionError, RecipientNotFoundError, SignatureError, SmimekitError

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_NEGATIVE",
    "EXIT_USAGE",
    "ErrorMappingGroup",
    "exit_code_for",
    "one_line",
]

EXIT_NEGATIVE = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in smimekit
EXIT_INTERRUPTED = 130

# The most specific class first; anything else smimekit raises is a usage or input error.
EXIT_CODES: tuple[tuple[type[SmimekitError], int], ...] = (
    (SignatureError, EXIT_NEGATIVE),
    (DecryptionError, EXIT_NEGATIVE),
    (RecipientNotFoundError, EXIT_NEGATIVE),
    (SmimekitError, EXIT_USAGE),
)

_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}


def exit_code_for(exc: SmimekitError) -> int:
    """The exit code for an error smimekit raised on purpose."""
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return EXIT_USAGE


def one_line(text: str) -> str:
    """``text`` on one line: line breaks become spaces, other control characters are escaped (so that a
    hostile file name cannot move the cursor or hide the rest of the message)."""
    text = " ".join(text.replace("\r\n", "\n").split("\n")).strip()
    return text.translate(_CONTROL) or "unknown error"


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.filename is not None:
        return f"{os.fsdecode(exc.filename)}: {reason[:1].lower()}{reason[1:]}"
    return reason


def _fail(message: str, code: int) -> NoReturn:
    with contextlib.suppress(OSError):  # stderr may be gone too; the exit code still tells
        click.echo(f"smimekit: error: {one_line(message)}", err=True)
    sys.exit(code)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so that the final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


class ErrorMappingGroup(click.Group):
    """A click group whose :meth:`main` prints every expected error as one line and exits with its code,
    whether it runs as the console script or under click's ``CliRunner``."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, **extra)
        except SmimekitError as exc:
            _fail(str(exc), exit_code_for(exc))
        except click.UsageError as exc:
            hint = ""
            if exc.ctx is not None:
                hint = f" (see '{exc.ctx.command_path} --help')"
            _fail(exc.format_message() + hint, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.Abort as exc:
            if isinstance(exc.__cause__, KeyboardInterrupt):
                sys.exit(EXIT_INTERRUPTED)
            _fail("aborted", EXIT_NEGATIVE)
        except KeyboardInterrupt:
            sys.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(EXIT_NEGATIVE)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                _silence_stdout()
                sys.exit(EXIT_NEGATIVE)
            _fail(_describe_os_error(exc), EXIT_USAGE)
        except MemoryError:
            _fail("out of memory", EXIT_USAGE)
        except Exception as exc:  # a bug: still one line, unless SMIMEKIT_DEBUG asks for the traceback
            if os.environ.get("SMIMEKIT_DEBUG"):
                raise
            _fail(
                f"internal error ({type(exc).__name__}: {exc}); please report it, "
                "and set SMIMEKIT_DEBUG=1 to see the traceback",
                EXIT_INTERNAL,
            )
        sys.exit(rv if isinstance(rv, int) else 0)
