"""`python -m tests.conformance`: run the execution-apis fixtures against a fresh node process
and print the per-method table; the last line is `rpc-compat: P passed, F failed of N`.
Exit status 1 when a fixture fails that is not in KNOWN_FAILURES."""
import pathlib
import sys
import tempfile

from rich.progress import track

from tests.conformance.runner import KNOWN_FAILURES, load_fixtures, print_table, run_fixture, start_node


def main() -> int:
    fixtures = load_fixtures()
    with tempfile.TemporaryDirectory(prefix="conformance-") as tmp:
        node = start_node(pathlib.Path(tmp))
        try:
            outcomes = [run_fixture(node, f) for f in track(fixtures, description="replaying fixtures")]
        finally:
            node.stop()
    print_table(outcomes)
    unexpected = [o for o in outcomes if o.failure and o.fixture.id not in KNOWN_FAILURES]
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
