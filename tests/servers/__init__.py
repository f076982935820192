"""Real servers for tests: private Dovecot, Postfix and slapd instances on 127.0.0.1, and a pass-through filter.

- ``tests.servers.dovecot.Dovecot``: IMAP(S), POP3(S), LMTP and SASL auth, Maildir on disk.
- ``tests.servers.postfix.Postfix``: submission -> content filter -> re-injection -> LMTP / relay host.
- ``tests.servers.slapd.Slapd``: OpenLDAP with inetOrgPerson entries carrying certificates.
- ``tests.servers.passthrough.PassThroughFilter``: an aiosmtpd content filter that re-injects unchanged.
- ``tests.servers.sink.SmtpSink``: an aiosmtpd server that keeps what it receives (a relay host for Postfix).

Each is a context manager that writes its own configuration under the ``tmp_dir`` it is given, picks free
ports in 20000-32767 (``_ports.free_port``), waits until it answers and stops and reaps what it started.
What they share is in ``_harness`` (the life cycle, retried start-up, a child server process),
``_aiosmtpd`` (the in-process SMTP servers), ``_ports``, ``_proc``, ``_system`` and ``_tls``.
``need("postfix", "dovecot")`` skips a test when a server is not installed.
"""

from __future__ import annotations

import os


def need(*tools: str) -> None:
    """Skip the calling test (or fixture) when one of ``tools`` (``slapd``, ``dovecot``, ``postfix``,
    ``postqueue``...) is not installed; in CI (``CI`` set) tests/conftest.py turns that skip into a failure."""
    import pytest

    from tests.servers._system import which

    for tool in tools:
        if which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if "postfix" in tools and os.geteuid() != 0:
        pytest.skip(f"a private Postfix needs root; not available as uid {os.geteuid()}")
    if "dovecot" in tools:
        for service in ("imap", "pop3", "lmtp"):
            if not os.path.exists(f"/usr/lib/dovecot/{service}"):
                pytest.skip(f"dovecot's {service} service is not installed")
