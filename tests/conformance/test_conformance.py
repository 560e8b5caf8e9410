"""execution-apis rpc-compat: every fixture against one `openledger run` process on the suite's
chain (init + import as a user would). One case per fixture; KNOWN_FAILURES (runner.py) lists
the ones we do not pass, each with its reason, as strict xfails."""
import pytest

from tests.conformance.runner import KNOWN_FAILURES, NodeProcess, load_fixtures, run_fixture

FIXTURES = load_fixtures()


@pytest.fixture(scope="module")
def node():
    process = NodeProcess()
    yield process
    process.close()


def test_known_failures_name_real_fixtures():
    ids = {f.id for f in FIXTURES}
    assert not set(KNOWN_FAILURES) - ids


@pytest.mark.parametrize("fixture", [
    pytest.param(f, id=f.id, marks=[pytest.mark.xfail(reason=KNOWN_FAILURES[f.id], strict=True)]
                 if f.id in KNOWN_FAILURES else [])
    for f in FIXTURES
])
def test_fixture(node, fixture):
    outcome = run_fixture(node, fixture)
    assert outcome.failure is None, outcome.failure
