"""The consensus state machine in a seeded simulated network (tests/consensus/sim.py): hundreds
of seeds here, thousands with `make test-all`. A failing seed names itself and how to replay it:
`python -m tests.consensus.sim --seed N`."""
import collections

import pytest

from tests.consensus import sim

FAST_SEEDS = range(300)
SLOW_SEEDS = range(300, 3300)


@pytest.mark.parametrize("seed", FAST_SEEDS)
def test_seeded_network(seed):
    sim.run_seed(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SLOW_SEEDS)
def test_seeded_network_more(seed):
    sim.run_seed(seed)


def test_the_fast_seeds_cover_every_fault():
    scenarios = [sim.Scenario.from_seed(s) for s in FAST_SEEDS]
    assert {s.n for s in scenarios} == {4, 5, 6, 7}
    assert any(len(set(s.powers)) > 1 for s in scenarios) and any(len(set(s.powers)) == 1 for s in scenarios)
    assert sum(s.n == 4 and s.byzantine is not None for s in scenarios) >= 20
    for mode in sim.BYZANTINE_MODES:
        assert any(mode in s.byzantine_modes for s in scenarios), mode
    assert sum(bool(s.partitions) for s in scenarios) >= 50
    assert sum(s.loss > 0 for s in scenarios) >= 50 and sum(s.vote_cut > 0 for s in scenarios) >= 50
    assert sum(s.duplicate > 0 for s in scenarios) >= 100
    assert sum(bool(s.crashes) for s in scenarios) >= 50 and any(mid for s in scenarios for *_, mid in s.crashes)
    assert any(s.delay[1] >= 300 for s in scenarios)


def test_runs_exercise_later_rounds_restarts_and_evidence():
    stats = collections.Counter()
    for seed in range(60):
        stats += sim.run_seed(seed).stats
    for what in ("decided in a later round", "resumed at a signed height", "evidence", "crashes", "rejected"):
        assert stats[what] > 0, (what, stats)


def test_a_validator_that_forgets_what_it_signed_is_caught(monkeypatch, capsys):
    """The checks have teeth: restart validators without their persisted signer state and a
    seed soon double-signs; the failure names the seed, and replaying it prints the trace."""
    boot = sim.Simulation._on_boot

    def amnesiac_boot(self, node):
        node.persisted = None
        boot(self, node)

    monkeypatch.setattr(sim.Simulation, "_on_boot", amnesiac_boot)
    for seed in range(300):
        try:
            sim.run_seed(seed)
        except sim.InvariantViolation as exc:
            assert "double-signed" in str(exc)
            assert f"replay: python -m tests.consensus.sim --seed {seed}" in str(exc)
            break
    else:
        pytest.fail("no seed caught a validator restarted without its signer state")
    assert sim.main(["--seed", str(seed)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL seed {seed}" in out and "crashes at" in out and "starts at height" in out


def test_replaying_a_seed_from_the_command_line(capsys):
    assert sim.main(["--seed", "3"]) == 0
    assert "ok seed 3" in capsys.readouterr().out
    assert sim.main(["--start", "4", "--runs", "2"]) == 0
    out = capsys.readouterr().out
    assert "ok seed 4" in out and "ok seed 5" in out
