"""TrainingConfig validation, canonical hashing and chain-derived seeds."""
import pytest

from training import ConfigError, Dataset, TrainingConfig, derive_seed, run


@pytest.mark.parametrize("field, value", [
    ("rank", 0), ("rank", -3), ("rank", 2.5), ("alpha", 0), ("dropout", 1.0), ("dropout", -0.1),
    ("lr", 0), ("lr", float("nan")), ("epochs", 0), ("batch_size", 0), ("max_length", -1),
    ("checkpoint_every", 0), ("warmup_steps", -1), ("schedule", "step"), ("task", "translation"),
    ("target_modules", ()), ("target_modules", ("",)), ("seed", -1), ("seed", True), ("labels", ("a", "b")),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ConfigError) as err:
        TrainingConfig(**{field: value})
    assert err.value.field == field
    assert field in str(err.value)


def test_classification_needs_distinct_labels():
    with pytest.raises(ConfigError, match="labels"):
        TrainingConfig(task="seq_cls", target_modules=("c_attn",), labels=("pos", "pos"))
    assert TrainingConfig(task="seq_cls", labels=("neg", "pos")).labels == ("neg", "pos")


def test_config_hash_is_canonical_and_sensitive():
    a = TrainingConfig(lr=1, target_modules=["q_proj", "v_proj"])
    b = TrainingConfig(lr=1.0, target_modules=("q_proj", "v_proj"))
    assert a == b and a.config_hash() == b.config_hash()
    assert a.canonical_json().startswith(b'{"alpha":16,')
    assert TrainingConfig(rank=9).config_hash() != a.config_hash()


def test_toml_round_trip_and_unknown_field(tmp_path):
    good = tmp_path / "run.toml"
    good.write_text('[training]\nrank = 4\nlr = 0.002\ntarget_modules = ["q_proj"]\n')
    assert TrainingConfig.from_toml(good) == TrainingConfig(rank=4, lr=0.002, target_modules=("q_proj",))
    bad = tmp_path / "bad.toml"
    bad.write_text("rnak = 4\n")
    with pytest.raises(ConfigError, match="rnak"):
        TrainingConfig.from_toml(bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("rank = = 4\n")
    with pytest.raises(ConfigError, match="cannot read"):
        TrainingConfig.from_toml(broken)


def test_seed_comes_from_block_hash_and_run_id():
    block = bytes.fromhex("11" * 32)
    seed = derive_seed(block, 5)
    assert seed == derive_seed(block, 5) and 0 <= seed < 2**63
    assert seed != derive_seed(block, 6) and seed != derive_seed(bytes(32), 5)
    with pytest.raises(ConfigError, match="block_hash"):
        derive_seed(b"short", 5)
    with pytest.raises(ConfigError, match="run_id"):
        derive_seed(block, -1)


def test_unknown_target_modules_rejected_before_training(tmp_path, data):
    config = TrainingConfig(target_modules=("q_proj", "attn_out"), batch_size=4, max_length=16)
    with pytest.raises(ConfigError) as err:
        run(config, data, "tiny-llama", tmp_path / "out", progress=False)
    assert err.value.field == "target_modules" and "attn_out" in str(err.value) and "v_proj" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_empty_dataset_rejected(tmp_path, config):
    with pytest.raises(ConfigError) as err:
        run(config, Dataset.from_rows([]), "tiny-llama", tmp_path / "out", progress=False)
    assert err.value.field == "dataset"


def test_unknown_base_model_named(tmp_path, data, config):
    with pytest.raises(ConfigError, match="no-such-model"):
        run(config, data, "no-such-model", tmp_path / "out", progress=False)
