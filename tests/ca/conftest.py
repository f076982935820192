"""The hierarchy of tests.ca._support, made once per session."""

from __future__ import annotations

import pytest

from tests.ca._support import Hierarchy, make_hierarchy


@pytest.fixture(scope="session")
def hierarchy() -> Hierarchy:
    return make_hierarchy()
