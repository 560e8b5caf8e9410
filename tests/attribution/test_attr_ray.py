"""Attribution on a local Ray instance: the index built over 1, 2 or 4 workers has the root of a
single-process build, a worker killed mid-build changes nothing, and a query over index shards
held by Ray actors gives the same proof as one over the whole index."""
import os
import pathlib

import pytest

from attribution import DataInfConfig, GradDotConfig, GradientAttributor, build_gradient_index
from attribution.distributed import ShardedRows, build_gradient_index_ray
from tests.attribution.attr_tiny import encode, per_example_loss


def _build(tiny, config, workers=None, loss=per_example_loss):
    args = (tiny.model, loss, tiny.batches, tiny.contributions, config, 11)
    return build_gradient_index_ray(*args, workers) if workers else build_gradient_index(*args)


@pytest.mark.parametrize("config", [pytest.param(GradDotConfig(), marks=pytest.mark.slow), DataInfConfig()],
                         ids=lambda c: c.method)
def test_root_is_the_single_process_root_for_any_worker_count(tiny, ray_local, config):
    single = _build(tiny, config)
    for workers in (1, 2, 4):
        sharded = _build(tiny, config, workers)
        assert sharded.root == single.root, f"{workers} workers"
        assert (sharded.vectors == single.vectors).all()


class KillFirstWorker:
    """A loss function whose first call anywhere kills the Ray worker running it (os._exit, as a
    crash or an OOM kill would): the marker file makes exactly one worker die."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __call__(self, model, batch):
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return per_example_loss(model, batch)
        os._exit(1)


def test_worker_killed_mid_build_is_retried_with_the_same_root(tiny, ray_local, tmp_path):
    single = _build(tiny, DataInfConfig())
    sharded = _build(tiny, DataInfConfig(), workers=2, loss=KillFirstWorker(tmp_path / "killed"))
    assert (tmp_path / "killed").exists()  # a worker did die
    assert sharded.root == single.root


def test_query_over_sharded_index_equals_the_whole_index(tiny, ray_local, tmp_path):
    index = _build(tiny, DataInfConfig())
    index.save(tmp_path / "index")
    local = GradientAttributor(index, tiny.model, per_example_loss, encode)
    rows = ShardedRows(tmp_path / "index", workers=3)
    try:
        sharded = GradientAttributor(index, tiny.model, per_example_loss, encode, rows=rows)
        for row in (0, 17, 42):
            prompt, output = tiny.query(row)
            proof = sharded.attribute(prompt, output)
            assert proof == local.attribute(prompt, output)
            assert local.verify(proof, prompt, output).accepted
            qvec = local.query_vector(prompt, output)
            assert sharded.scores(qvec) == local.scores(qvec)
    finally:
        rows.close()


def test_span_index_built_as_shards_on_ray_answers_as_one(ray_local, tmp_path):
    """Contiguous slices of the rows indexed as separate infini-gram shards by Ray tasks: the same
    root, and every query the same proof as over a one-shard index (infini-gram sums shard counts)."""
    from eth_utils import keccak

    from attribution import Contribution, SpanAttributor, SpanIndex

    texts = [f"row {i}: {'the zebra quartzite manifesto' if i % 4 == 1 else 'a plain review'} of film {i % 7} "
             f"with {'rare velvet semaphore' if i % 5 == 2 else 'ordinary words'}".encode() for i in range(40)]
    contributions = [Contribution(keccak(t), keccak(b"owner %d" % (i % 6))[:20]) for i, t in enumerate(texts)]
    one = SpanIndex.build(texts, contributions, tmp_path / "one")
    sharded = SpanIndex.build(texts, contributions, tmp_path / "sharded", workers=3)
    assert sharded.root == one.root
    assert sorted(p.name for p in (tmp_path / "sharded" / "infini-gram").iterdir()) == sorted(
        f"{name}.{k}" for name in ("offset", "table", "tokenized") for k in range(3))
    a, b = SpanAttributor(one), SpanAttributor(sharded)
    for output in (b"the zebra quartzite manifesto of film 3", b"rare velvet semaphore with ordinary words",
                   b"row 17: a plain review of film 3"):
        assert b.scores(output) == a.scores(output) and b.scores(output)
        proof = b.attribute(b"q", output)
        assert proof == a.attribute(b"q", output) and a.verify(proof, b"q", output).accepted
