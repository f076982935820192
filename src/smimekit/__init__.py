"""smimekit — MIME and S/MIME for Python.

The public API, kept complete by a test: the exception hierarchy, and the MIME engine as
``smimekit.mime`` (``parse``, ``parse_file``, ``compose`` ...).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import mime
from .errors import (
    CryptoError,
    MimeBuildError,
    MimeDecodeError,
    MimeError,
    MimeLimitError,
    MimeParseError,
    SmimekitError,
    UsageError,
)

try:
    __version__ = version("smimekit")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

__all__ = [
    "CryptoError",
    "MimeBuildError",
    "MimeDecodeError",
    "MimeError",
    "MimeLimitError",
    "MimeParseError",
    "SmimekitError",
    "UsageError",
    "__version__",
    "mime",
]
