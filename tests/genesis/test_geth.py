"""go-ethereum genesis import: the execution-apis test chain's genesis, its forks and bad files."""
import copy
import json

import pytest
from eth_utils import encode_hex

import genesis
from genesis import geth
from tests.conformance.chain import TESTS, imported_chain, raw_blocks, resolved_genesis

HEAD_HASH = json.loads((TESTS / "headfcu.json").read_text())["params"][0]["headBlockHash"]


def geth_genesis() -> dict:
    return json.loads((TESTS / "genesis.json").read_text())


def test_block_forks_and_pending_time_forks():
    g = geth.from_geth(geth_genesis())
    assert g.chain_id == 3503995874084926
    assert g.forks[0] == (0, "homestead") and (36, "paris") in g.forks
    assert g.ethereum.pending_forks(g.forks) == ("shanghai", "cancun", "prague")
    assert g.validators == () and g.ethereum.blob_schedule["prague"].max == 9


def test_time_forks_resolve_to_first_block_at_or_after_the_time():
    g = resolved_genesis()
    assert g.forks[-3:] == ((39, "shanghai"), (42, "cancun"), (45, "prague"))
    assert g.fork == "prague" and g.ethereum.pending_forks(g.forks) == ()


def test_resolved_forks_survive_a_json_round_trip(tmp_path):
    g = resolved_genesis()
    path = tmp_path / "genesis.json"
    path.write_text(genesis.to_json(g))
    assert json.loads(path.read_text())["config"][geth.RESOLVED_KEY] == {"shanghai": 39, "cancun": 42,
                                                                          "prague": 45}
    assert genesis.load(path) == g


def test_chain_imports_to_the_fixture_head():
    chain = imported_chain()
    assert chain.get_canonical_head().block_number == 45
    assert encode_hex(chain.get_canonical_head().hash) == HEAD_HASH


def test_genesis_with_merge_by_total_difficulty_only_resolves_at_first_zero_difficulty_block():
    raw = geth_genesis()
    del raw["config"]["mergeNetsplitBlock"]
    g = geth.from_geth(raw)
    assert g.ethereum.pending_forks(g.forks)[0] == "paris"
    resolved = geth.resolve_forks(g, (geth.HeaderFields.from_block_rlp(b) for b in raw_blocks()))
    assert (36, "paris") in resolved.forks


def test_time_fork_active_at_genesis_is_block_zero():
    raw = geth_genesis()
    for key in ("shanghaiTime", "cancunTime", "pragueTime"):
        raw["config"][key] = 0
    for key in ("homesteadBlock", "eip150Block", "eip155Block", "eip158Block", "byzantiumBlock",
                "constantinopleBlock", "petersburgBlock", "istanbulBlock", "muirGlacierBlock", "berlinBlock",
                "londonBlock", "arrowGlacierBlock", "grayGlacierBlock", "mergeNetsplitBlock"):
        raw["config"][key] = 0
    g = geth.from_geth(raw)
    assert g.forks == ((0, "prague"),) and g.ethereum.base_fee == 1_000_000_000


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["config"].__setitem__("chainId", "seven"), "config.chainId"),
    (lambda r: r["config"].__setitem__("byzantiumBlock", 2), "config.byzantiumBlock"),
    (lambda r: r["config"].__setitem__("osakaTime", 500), "osakaTime"),
    (lambda r: r["config"]["blobSchedule"]["cancun"].__setitem__("max", 7), "blobSchedule.cancun"),
    (lambda r: r["alloc"].__setitem__("0xzz", {"balance": "0x1"}), "alloc address"),
    (lambda r: r["alloc"].__setitem__("0x" + "11" * 20, {"balance": "-5"}), "balance"),
    (lambda r: r["alloc"].__setitem__("0x" + "11" * 20, {"balance": "0x1", "storage": {"0x1": "0xzz"}}),
     "storage"),
    (lambda r: r.__setitem__("alloc", []), "alloc"),
    (lambda r: r.__setitem__("gasLimit", "0x10"), "gasLimit"),
])
def test_bad_geth_genesis_names_the_field(mutate, message):
    raw = copy.deepcopy(geth_genesis())
    mutate(raw)
    with pytest.raises(genesis.GenesisError, match=message):
        geth.from_geth(raw)


def test_our_format_is_not_mistaken_for_geth(tmp_path):
    ours = genesis.devnet()
    path = tmp_path / "g.json"
    path.write_text(genesis.to_json(ours))
    assert genesis.load(path) == ours and ours.ethereum is None and ours.forks == ((0, "prague"),)
