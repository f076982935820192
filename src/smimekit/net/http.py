"""A tiny HTTP client for revocation data: GET and POST over http(s) on urllib, bounded in time and size.

Only ``http`` and ``https`` URLs are fetched, redirects included (a redirect to ``file:`` or ``ftp:`` is
refused); a response larger than ``max_size`` is refused while it is read, not after. Every failure is a
:class:`~smimekit.errors.FetchError` whose ``reason`` names the URL.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import IO, Any

from smimekit.errors import FetchError, UsageError

__all__ = ["DEFAULT_DEADLINE", "DEFAULT_MAX_SIZE", "DEFAULT_TIMEOUT", "HttpClient", "HttpResponse"]

DEFAULT_TIMEOUT = 10.0
#: The whole exchange (connecting, sending, reading the body) must end within this many seconds.
DEFAULT_DEADLINE = 60.0
#: Large enough for the CRL of a big CA; OCSP responses are a few kilobytes.
DEFAULT_MAX_SIZE = 32 << 20
_SCHEMES = ("http", "https")
_CHUNK = 64 << 10
_USER_AGENT = "smimekit"


@dataclass(frozen=True)
class HttpResponse:
    """The body of a successful (2xx) response, its Content-Type and the URL it finally came from."""

    url: str
    content_type: str
    body: bytes


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urllib.parse.urlsplit(newurl).scheme.lower() not in _SCHEMES:
            raise urllib.error.URLError(f"redirected to a {urllib.parse.urlsplit(newurl).scheme}: URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


@dataclass(frozen=True)
class HttpClient:
    """GET and POST with a ``timeout`` (seconds, per connection and per read), a ``deadline`` (seconds for
    the whole exchange, so that a server trickling bytes cannot hold us) and a ``max_size`` (bytes).
    Raises UsageError for a timeout, deadline or size that is not positive."""

    timeout: float = DEFAULT_TIMEOUT
    max_size: int = DEFAULT_MAX_SIZE
    deadline: float = DEFAULT_DEADLINE

    def __post_init__(self) -> None:
        if not self.timeout > 0 or not self.deadline > 0:
            raise UsageError("the HTTP timeout and deadline must be positive")
        if self.max_size < 1:
            raise UsageError("the HTTP size limit must be positive")

    def get(self, url: str) -> HttpResponse:
        """GET ``url``. Raises FetchError for a URL that is not http(s), a network failure, a timeout, a
        status other than 2xx, or a body over ``max_size``."""
        return self._send(url, None, {})

    def post(self, url: str, data: bytes, *, content_type: str) -> HttpResponse:
        """POST ``data`` to ``url`` as ``content_type``; raises as :meth:`get`."""
        return self._send(url, bytes(data), {"Content-Type": content_type})

    def _send(self, url: str, data: bytes | None, headers: dict[str, str]) -> HttpResponse:
        if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme.lower() not in _SCHEMES:
            raise FetchError(f"{url!r} is not an http or https URL")
        if not urllib.parse.urlsplit(url).hostname:
            raise FetchError(f"{url!r} names no host")
        request = urllib.request.Request(
            url, data=data, headers={"User-Agent": _USER_AGENT, **headers}, method="POST" if data else "GET"
        )
        opener = urllib.request.build_opener(_RedirectHandler())
        end = time.monotonic() + self.deadline
        try:
            with opener.open(request, timeout=min(self.timeout, self.deadline)) as response:
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > self.max_size:
                    raise FetchError(f"{url} answered with {length} bytes, over the limit of {self.max_size}")
                chunks: list[bytes] = []
                size = 0
                while chunk := response.read1(_CHUNK):
                    size += len(chunk)
                    if size > self.max_size:
                        raise FetchError(f"{url} answered with more than {self.max_size} bytes")
                    if time.monotonic() > end:
                        raise FetchError(f"{url} did not answer within {self.deadline:g} seconds")
                    chunks.append(chunk)
                body = b"".join(chunks)
                return HttpResponse(
                    url=response.geturl(),
                    content_type=response.headers.get_content_type(),
                    body=body,
                )
        except FetchError:
            raise
        except urllib.error.HTTPError as exc:
            raise FetchError(f"{url} answered HTTP {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise FetchError(f"{url} cannot be reached: {exc.reason}") from None
        except (OSError, ValueError) as exc:  # timeouts, resets, malformed responses
            raise FetchError(f"{url} cannot be fetched: {exc}") from None
