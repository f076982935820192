"""The one exception hierarchy of smimekit.

::

    SmimekitError                      root: catch this to catch everything smimekit raises
    ├── UsageError                     a caller passed something that cannot work (bad option, missing file)
    ├── MimeError                      MIME parsing, building and decoding
    │   ├── MimeParseError             malformed input under a strict policy (carries the byte offset)
    │   ├── MimeLimitError             a configured limit was exceeded (depth, parts, header size, ...)
    │   ├── MimeDecodeError            a body or header could not be decoded (strict decoding only)
    │   └── MimeBuildError             a message cannot be composed as asked
    └── CryptoError                    CMS and S/MIME (see the S/MIME core)

Every exception reads as a sentence and carries structured fields, so that the command line can print one
clear line and a program can act on the details.
"""

from __future__ import annotations


class SmimekitError(Exception):
    """Root of every exception smimekit raises on purpose."""


class UsageError(SmimekitError):
    """A caller asked for something that cannot work: a bad option, a missing file, a wrong combination."""


# --------------------------------------------------------------------------------------------- MIME


class MimeError(SmimekitError):
    """Something about a MIME message is wrong."""


class MimeParseError(MimeError):
    """Malformed MIME under a strict policy.

    ``offset`` is the byte offset in the input where the problem was found, ``defect`` the name of the
    defect that a lenient parse would have recorded instead.
    """

    def __init__(self, message: str, *, offset: int, defect: str = "") -> None:
        super().__init__(f"{message} (at byte {offset})")
        self.offset = offset
        self.defect = defect


class MimeLimitError(MimeError):
    """A parsing limit was exceeded; ``limit`` names it, ``value`` is its configured value."""

    def __init__(self, limit: str, value: int, *, offset: int) -> None:
        super().__init__(f"the message exceeds the limit {limit}={value} (at byte {offset})")
        self.limit = limit
        self.value = value
        self.offset = offset


class MimeDecodeError(MimeError):
    """A transfer encoding, charset or header could not be decoded (raised only when asked to be strict)."""


class MimeBuildError(MimeError):
    """A message cannot be composed as asked (bad address, unknown charset, conflicting options)."""


# --------------------------------------------------------------------------------------------- crypto


class CryptoError(SmimekitError):
    """Root of the CMS and S/MIME errors."""
