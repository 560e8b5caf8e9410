"""`python -m tests.conformance`: run the execution-apis fixtures against a fresh node process
and print the per-method table; the last line is `rpc-compat: P passed, F failed of N`.
Exit status 1 when a fixture fails that is not in KNOWN_FAILURES."""
import sys

from rich.progress import track

from tests.conformance.runner import KNOWN_FAILURES, NodeProcess, load_fixtures, print_table, run_fixture


def main() -> int:
    fixtures = load_fixtures()
    node = NodeProcess()
    try:
        outcomes = [run_fixture(node, f) for f in track(fixtures, description="replaying fixtures")]
    finally:
        node.close()
    print_table(outcomes)
    unexpected = [o for o in outcomes if o.failure and o.fixture.id not in KNOWN_FAILURES]
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
