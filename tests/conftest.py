"""Suite-wide rules.

In CI (``CI`` set) the real tools and the shared vectors are installed by ``.ci/run``: a test skipped because
one of them is missing would hide a broken set-up, so such a skip fails there instead.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

_MISSING = ("not installed", "not available", "is missing")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, None, None]:
    outcome = yield
    report = outcome.get_result()
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    if any(word in reason for word in _MISSING):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI although .ci/run installs what it needs: {reason}"


@pytest.fixture(autouse=True)
def _private_default_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the real default store of whoever runs the suite: the XDG data directory
    is a fresh temporary one, and the store and password variables of the caller's shell are ignored."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
    for name in ("SMIMEKIT_STORE", "SMIMEKIT_PASSWORD", "SMIMEKIT_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
