"""The gathered multi-adapter forward equals peft's mixed-batch (`adapter_names=`) forward."""
import pytest
import torch
from peft import PeftModel

from inference.executor import Executor, LoraPool
from inference.models import tiny_llama


@pytest.fixture(scope="module")
def peft_model(adapter_dirs):
    pm = PeftModel.from_pretrained(tiny_llama(seed=0), str(adapter_dirs[0]), adapter_name="a0")
    for i, d in enumerate(adapter_dirs[1:], 1):
        pm.load_adapter(str(d), adapter_name=f"a{i}")
    return pm.eval()


def _executor(model, store, slots=8, batch=8):
    pool = LoraPool(store.base, store.targets, store.max_rank, slots, torch.float32, "cpu")
    return Executor(model, pool, batch, 64)


def test_adapters_really_differ(model, store, ids, peft_model):
    toks = torch.randint(3, 256, (1, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        outs = [peft_model(input_ids=toks, adapter_names=[n]).logits for n in ("__base__", "a0", "a1", "a5")]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert (outs[i] - outs[j]).abs().max() > 1e-2


def test_mixed_batch_prefill_and_decode_equal_peft(model, store, ids, peft_model):
    ex = _executor(model, store)
    names = ["a0", "a5", "__base__", "a3", "a1", "a5", "a4", "a2"]  # ranks 4..8, repeats, base
    slots = torch.tensor([0 if n == "__base__" else ex.pool.acquire(store.get(ids[int(n[1:])])) for n in names])
    gen = torch.Generator().manual_seed(2)
    toks = torch.randint(3, 256, (len(names), 10), generator=gen)
    hidden = ex.forward(toks, 0, torch.zeros(len(names), dtype=torch.long), slots)
    with torch.no_grad():
        ref = peft_model(input_ids=toks, adapter_names=names).logits
    torch.testing.assert_close(ex.logits(hidden), ref, atol=2e-5, rtol=1e-4)
    for step in range(3):  # decode steps against peft's full recomputation
        nxt = torch.randint(3, 256, (len(names), 1), generator=gen)
        hidden = ex.forward(nxt, 0, torch.full((len(names),), toks.shape[1]), slots)
        toks = torch.cat([toks, nxt], 1)
        with torch.no_grad():
            ref = peft_model(input_ids=toks, adapter_names=names).logits[:, -1:]
        torch.testing.assert_close(ex.logits(hidden), ref, atol=2e-5, rtol=1e-4)


def test_pool_evicts_unpinned_lru_slot_and_reuploads(model, store, ids, peft_model):
    ex = _executor(model, store, slots=3, batch=2)  # room for two adapters
    s0 = ex.pool.acquire(store.get(ids[0]))
    s1 = ex.pool.acquire(store.get(ids[1]))
    ex.pool.release(s0)
    assert ex.pool.can_acquire(ids[2])  # ids[0]'s slot is unpinned now
    s2 = ex.pool.acquire(store.get(ids[2]))  # evicts ids[0] (unpinned), not ids[1] (pinned)
    assert s2 == s0 and ex.pool.slot_of(ids[0]) is None and ex.pool.slot_of(ids[1]) == s1
    ex.pool.release(s2)
    ex.pool.release(s1)
    slot = ex.pool.acquire(store.get(ids[0]))  # reloaded into a slot: same results as peft
    toks = torch.randint(3, 256, (1, 8), generator=torch.Generator().manual_seed(3))
    hidden = ex.forward(toks, 0, torch.zeros(1, dtype=torch.long), torch.tensor([slot]))
    with torch.no_grad():
        ref = peft_model(input_ids=toks, adapter_names=["a0"]).logits
    torch.testing.assert_close(ex.logits(hidden), ref, atol=2e-5, rtol=1e-4)
    ex.pool.acquire(store.get(ids[3]))  # evicts the last unpinned slot
    assert not ex.pool.can_acquire(ids[4])
    with pytest.raises(RuntimeError, match="pinned"):
        ex.pool.acquire(store.get(ids[4]))
