"""Continuous batching: outputs do not depend on neighbours or join order; replayable sampling;
hostile requests get clear errors and change nothing."""
import concurrent.futures
import shutil

import pytest
import torch

from inference import BadRequest, CorruptAdapter, Engine, SamplingParams, UnknownAdapter
from inference.adapters import WEIGHTS_FILE


def _alone(model, store, gen):
    return Engine(model, store, max_batch=1, max_seq_len=128, pool_slots=2).generate(gen.adapter_id, gen.prompt,
                                                                                      gen.params)


def test_requests_join_and_leave_without_changing_each_other(model, store, ids):
    engine = Engine(model, store, max_batch=4, max_seq_len=128, pool_slots=4)  # fewer slots than adapters
    rng = torch.Generator().manual_seed(5)
    futures = []
    for i in range(9):
        prompt = torch.randint(3, 256, (int(torch.randint(1, 12, (1,), generator=rng)),), generator=rng).tolist()
        params = SamplingParams(max_new_tokens=5 + 7 * i, temperature=0.9 if i % 3 == 0 else 0.0, seed=1000 + i)
        futures.append(engine.submit(ids[i % len(ids)] if i % 4 else None, prompt, params))
        engine.step()  # requests arrive while others are mid-generation
    engine.run_until_idle()
    gens = [f.result() for f in futures]
    assert len({g.tokens for g in gens}) == len(gens)
    assert engine.pool.uploads > 4  # slots were evicted and reused
    for g in gens:
        assert len(g.tokens) == g.params.max_new_tokens or g.finish_reason == "stop"
        alone = _alone(model, store, g)
        assert alone.tokens == g.tokens
        assert alone.commitment == g.commitment


def test_seeded_sampling_replays_and_seed_matters(model, store, ids):
    engine = Engine(model, store, max_batch=4, max_seq_len=128)
    params = SamplingParams(max_new_tokens=24, temperature=1.2, top_p=0.9, seed=2**64 - 1)
    a = engine.generate(ids[2], [1, 40, 41], params)
    b = engine.generate(ids[2], [1, 40, 41], params)
    c = engine.generate(ids[2], [1, 40, 41], SamplingParams(max_new_tokens=24, temperature=1.2, top_p=0.9, seed=7))
    assert a.tokens == b.tokens and a.tokens != c.tokens


def test_background_thread_serves_concurrent_submitters(model, store, ids):
    engine = Engine(model, store, max_batch=8, max_seq_len=128).start()
    try:
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(lambda i=i: engine.submit(ids[i], [1, 2 + i, 9], SamplingParams(12)).result(60))
                       for i in range(6)]
            gens = [f.result() for f in futures]
    finally:
        engine.close()
    for g in gens:
        assert g.tokens == _alone(model, store, g).tokens


@pytest.mark.parametrize("kwargs, match", [
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": 2.5}, "max_new_tokens"),
    ({"temperature": -1.0}, "temperature"),
    ({"temperature": float("nan")}, "temperature"),
    ({"top_p": 0.0}, "top_p"),
    ({"top_p": 1.5}, "top_p"),
    ({"seed": -1}, "seed"),
    ({"seed": 2**64}, "seed"),
    ({"seed": "1"}, "seed"),
])
def test_bad_sampling_params(kwargs, match):
    with pytest.raises(BadRequest, match=match):
        SamplingParams(**kwargs)


def test_hostile_requests_are_rejected_and_queue_nothing(model, store, ids):
    engine = Engine(model, store, max_batch=2, max_seq_len=32)
    cases = [
        (UnknownAdapter, "0x" + "ee" * 32, [1, 2]),
        (BadRequest, "not-a-hash", [1, 2]),
        (BadRequest, ids[0], []),
        (BadRequest, ids[0], "hello"),
        (BadRequest, ids[0], [1, 256]),
        (BadRequest, ids[0], [1, -3]),
        (BadRequest, ids[0], [1, True]),
        (BadRequest, ids[0], list(range(3, 40))),  # oversized prompt
    ]
    for error, adapter, prompt in cases:
        with pytest.raises(error):
            engine.submit(adapter, prompt, SamplingParams(4))
    with pytest.raises(BadRequest, match="exceeds the context"):
        engine.submit(ids[0], [1, 2, 3], SamplingParams(max_new_tokens=31))
    assert not engine.step()  # nothing was queued
    assert engine.generate(ids[0], [1, 2, 3], SamplingParams(4)).tokens  # and it still serves


def test_corrupt_adapter_fails_its_request_only(tmp_path, model, adapter_dirs):
    from inference import AdapterStore, BaseSpec
    s = AdapterStore(tmp_path / "store", BaseSpec.of(model))
    good, bad = s.add(adapter_dirs[0]), s.add(adapter_dirs[1])
    (tmp_path / "store" / bad / WEIGHTS_FILE).write_bytes(b"truncated")
    engine = Engine(model, s, max_batch=4, max_seq_len=64)
    f_bad = engine.submit(bad, [1, 2], SamplingParams(4))
    f_good = engine.submit(good, [1, 2], SamplingParams(4))
    engine.run_until_idle()
    with pytest.raises(CorruptAdapter, match="hash"):
        f_bad.result()
    assert len(f_good.result().tokens) == 4
    shutil.rmtree(tmp_path / "store" / bad)
    s.close()
