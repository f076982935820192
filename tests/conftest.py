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
