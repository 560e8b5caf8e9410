"""AdapterStore: content hashing, validation of hostile files, CPU-tier eviction and reload."""
import json
import shutil

import pytest
import torch
from eth_utils import keccak
from safetensors.torch import load_file, save_file

from inference import (AdapterHashMismatch, AdapterStore, BadRequest, BaseSpec, CorruptAdapter, IncompatibleAdapter,
                       UnknownAdapter, adapter_dir_hash)
from inference.adapters import CONFIG_FILE, WEIGHTS_FILE
from inference.models import random_adapter


def test_hash_is_the_training_record_adapter_hash(adapter_dirs):
    import training

    folder = adapter_dirs[0]
    c, s = (folder / CONFIG_FILE).read_bytes(), (folder / WEIGHTS_FILE).read_bytes()
    expected = keccak(b"adapter_config.json\x00" + keccak(c) + b"adapter_model.safetensors\x00" + keccak(s))
    assert adapter_dir_hash(folder) == "0x" + expected.hex() == "0x" + training.adapter_hash(folder).hex()


def test_add_get_and_parsed_weights_match_files(store, ids, adapter_dirs):
    assert store.has(ids[1]) and ids[1] in store.ids()
    loaded = store.get(ids[1].upper().replace("0X", "0x"))
    assert loaded.rank == 5 and loaded.targets == ("q_proj", "v_proj")
    raw = load_file(adapter_dirs[1] / WEIGHTS_FILE)
    a, b = loaded.weights[(1, "v_proj")]
    assert torch.equal(a, raw["base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"])
    scaling = json.loads((adapter_dirs[1] / CONFIG_FILE).read_text())["lora_alpha"] / 5
    assert torch.allclose(b, raw["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"] * scaling)


def test_unknown_and_malformed_ids(store):
    with pytest.raises(UnknownAdapter):
        store.get("0x" + "ab" * 32)
    for bad in ("0x1234", "zz" * 32, 7, "0x" + "g" * 64):
        with pytest.raises(BadRequest):
            store.get(bad)


def test_tampered_files_fail_the_hash_check(tmp_path, model, adapter_dirs):
    s = AdapterStore(tmp_path / "s", BaseSpec.of(model))
    adapter_id = s.add(adapter_dirs[0])
    weights = tmp_path / "s" / adapter_id / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[-5] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(AdapterHashMismatch, match=adapter_id):
        s.get(adapter_id)
    assert s.resident() == []
    s.close()


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("case, error, match", [
    ("config_not_json", CorruptAdapter, "not valid JSON"),
    ("config_not_lora", CorruptAdapter, "peft_type"),
    ("weights_garbage", CorruptAdapter, "not a valid safetensors"),
    ("weights_missing", CorruptAdapter, "cannot read"),
    ("rank_too_big", IncompatibleAdapter, "max rank"),
    ("dora", IncompatibleAdapter, "use_dora"),
    ("bad_rank", CorruptAdapter, "positive integer"),
    ("missing_B", CorruptAdapter, "lora_B"),
    ("wrong_shape", IncompatibleAdapter, "do not fit"),
    ("nan", CorruptAdapter, "NaN"),
    ("layer_out_of_range", IncompatibleAdapter, "layer 7"),
    ("foreign_key", IncompatibleAdapter, "not a LoRA A/B weight"),
])
def test_hostile_adapter_files_are_rejected(tmp_path, model, adapter_dirs, case, error, match):
    folder = _copy(adapter_dirs[0], tmp_path / case)
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    sd = load_file(folder / WEIGHTS_FILE)
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_"
    if case == "config_not_json":
        (folder / CONFIG_FILE).write_bytes(b"{not json")
    elif case == "config_not_lora":
        cfg["peft_type"] = "IA3"
    elif case == "weights_garbage":
        (folder / WEIGHTS_FILE).write_bytes(b"\xff" * 64)
    elif case == "weights_missing":
        (folder / WEIGHTS_FILE).unlink()
    elif case == "rank_too_big":
        cfg["r"] = 64
    elif case == "dora":
        cfg["use_dora"] = True
    elif case == "bad_rank":
        cfg["r"] = "eight"
    elif case == "missing_B":
        del sd[key + "B.weight"]
    elif case == "wrong_shape":
        sd[key + "A.weight"] = torch.zeros(4, 48)
    elif case == "nan":
        sd[key + "A.weight"][0, 0] = float("nan")
    elif case == "layer_out_of_range":
        sd[key.replace("layers.0", "layers.7") + "A.weight"] = sd[key + "A.weight"].clone()
        sd[key.replace("layers.0", "layers.7") + "B.weight"] = sd[key + "B.weight"].clone()
    elif case == "foreign_key":
        sd["base_model.model.lm_head.weight"] = torch.zeros(2, 2)
    if case not in ("config_not_json", "weights_garbage", "weights_missing"):
        (folder / CONFIG_FILE).write_text(json.dumps(cfg))
        save_file(sd, folder / WEIGHTS_FILE)
    s = AdapterStore(tmp_path / "store", BaseSpec.of(model), max_rank=8)
    with pytest.raises(error, match=match):
        s.add(folder)
    assert s.ids() == []  # nothing was stored
    s.close()


def test_targets_the_base_does_not_have_or_the_server_does_not_serve(tmp_path, model):
    s = AdapterStore(tmp_path / "store", BaseSpec.of(model), targets=("q_proj", "v_proj"))
    with pytest.raises(IncompatibleAdapter, match="serves"):
        s.add(random_adapter(model, tmp_path / "mlp", targets=("gate_proj",)))
    with pytest.raises(IncompatibleAdapter, match="not modules of the base"):
        AdapterStore(tmp_path / "s2", BaseSpec.of(model), targets=("c_attn",))
    s.close()


def test_cpu_tier_evicts_least_recently_used_and_reloads(tmp_path, model, adapter_dirs):
    spec, targets = BaseSpec.of(model), ("q_proj", "v_proj", "o_proj", "up_proj")
    probe = AdapterStore(tmp_path / "store", spec, targets=targets, max_rank=8)
    ids = [probe.add(d) for d in adapter_dirs[:4]]
    size = {i: probe.get(i).nbytes for i in ids}
    probe.close()
    s = AdapterStore(tmp_path / "store", spec, targets=targets, max_rank=8,
                     cpu_budget_bytes=size[ids[1]] + size[ids[2]] + size[ids[3]])
    for i in ids:
        s.get(i)
    assert s.resident() == ids[1:] and s.resident_bytes <= s.cpu_budget_bytes
    s.get(ids[1])  # touch: ids[2] is now the least recently used
    before = s.loads
    again = s.get(ids[0])  # cold again: reloaded from disk, hash re-checked
    assert s.loads == before + 1 and ids[2] not in s.resident() and ids[1] in s.resident()
    assert s.resident_bytes <= s.cpu_budget_bytes
    assert torch.equal(again.buffer, s.get(ids[0]).buffer)
    s.close()


def test_prefetch_loads_in_the_background(tmp_path, model, adapter_dirs):
    s = AdapterStore(tmp_path / "store", BaseSpec.of(model), targets=("q_proj", "v_proj", "o_proj", "up_proj"),
                     max_rank=8)
    adapter_id = s.add(adapter_dirs[2])
    future = s.prefetch(adapter_id)
    loaded = future.result(timeout=30)
    assert loaded.adapter_id == adapter_id and adapter_id in s.resident()
    with pytest.raises(UnknownAdapter):
        s.prefetch("0x" + "cd" * 32).result(timeout=30)
    s.close()
