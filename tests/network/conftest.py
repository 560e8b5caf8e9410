"""Each test's report on its item, so a fixture can tell a failed test from a passed one (and
show the nodes' logs only then)."""
from __future__ import annotations

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
