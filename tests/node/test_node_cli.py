"""`openledger` commands that do not serve: init, export/import, keys; errors name bad values."""
import json

import pytest

import genesis
from node import keystore
from node.chain import Node
from node.cli import build_parser, main


def test_help_everywhere(capsys) -> None:
    for argv in ([], ["devnet"], ["init"], ["run"], ["export"], ["import"], ["keys"], ["keys", "new"], ["keys", "list"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "--help"])
        assert info.value.code == 0
        assert "usage: openledger" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["devnet", "--http.port", "http"], "invalid port 'http'"),
    (["devnet", "--http.port", "70000"], "invalid port 70000"),
    (["devnet", "--block-time", "-1"], "invalid --block-time '-1'"),
    (["run", "--datadir", "d", "--http.api", ","], "invalid --http.api ','"),
    (["run", "--datadir", "d", "--p2p.announce", "/ip4/1.2.3.4/tcp/x"], "invalid multiaddr '/ip4/1.2.3.4/tcp/x'"),
    (["run", "--datadir", "d", "--p2p.announce", "/ip4/1.2.3.4/tcp/1/p2p/12D3KooWGpzKhYAwPpvP3YJ12kcitmxMqDinvRDM9hQtdRWAuaQ5"],
     "invalid --p2p.announce entry '/ip4/1.2.3.4/tcp/1/p2p/12D3KooW"),
    (["init", "g.json"], "--datadir"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
])
def test_bad_flags_are_named(capsys, argv, message) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_init_and_its_errors(tmp_path, capsys) -> None:
    assert main(["init", str(tmp_path / "missing.json"), "--datadir", str(tmp_path / "d")]) == 1
    assert "missing.json" in capsys.readouterr().err
    bad = json.loads(genesis.to_json(genesis.devnet()))
    bad["chainId"] = 1612
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert main(["init", str(tmp_path / "bad.json"), "--datadir", str(tmp_path / "d")]) == 1
    assert "chainId 1612" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
    (tmp_path / "g.json").write_text(genesis.to_json(genesis.devnet(chain_id=4242)))
    assert main(["init", str(tmp_path / "g.json"), "--datadir", str(tmp_path / "d")]) == 0
    assert "chain id 4242" in capsys.readouterr().out
    (tmp_path / "other.json").write_text(genesis.to_json(genesis.devnet()))
    assert main(["init", str(tmp_path / "other.json"), "--datadir", str(tmp_path / "d")]) == 1
    assert "another genesis" in capsys.readouterr().err
    assert main(["run", "--datadir", str(tmp_path / "nowhere")]) == 1
    assert "not initialised" in capsys.readouterr().err
    assert main(["run", "--datadir", str(tmp_path / "d"), "--http.api", "eth,bogus"]) == 1
    assert "bogus" in capsys.readouterr().err
    with Node.open(tmp_path / "d") as node:
        assert node.chain_id == 4242


def test_export_import_round_trip(tmp_path, capsys, dev_accounts, sign_tx) -> None:
    source = tmp_path / "source"
    with Node.init(source, genesis.devnet()) as node:
        for n in range(3):
            node.mempool.add_raw(sign_tx(dev_accounts[1][1], n))
            node.produce_block()
        node.produce_block()
        head = node.head()
    out = tmp_path / "chain.rlp"
    assert main(["export", str(out), "--datadir", str(source)]) == 0
    assert main(["export", str(tmp_path / "x.rlp"), "--datadir", str(source), "--last", "9"]) == 1
    assert "invalid block range 1..9" in capsys.readouterr().err
    target = tmp_path / "target"
    Node.init(target, genesis.devnet()).close()
    assert main(["import", str(out), "--datadir", str(target)]) == 0
    assert "imported 4 blocks, skipped 0" in capsys.readouterr().out
    assert main(["import", str(out), "--datadir", str(target)]) == 0  # idempotent
    assert "imported 0 blocks, skipped 4" in capsys.readouterr().out
    with Node.open(target) as node:
        assert node.head() == head and node.tx_location(node.block_by_number(3).transactions[0].hash) == (3, 0)
    data = out.read_bytes()
    (tmp_path / "cut.rlp").write_bytes(data[:-5])
    assert main(["import", str(tmp_path / "cut.rlp"), "--datadir", str(target)]) == 1
    assert "truncated block at byte" in capsys.readouterr().err
    (tmp_path / "junk.rlp").write_bytes(b"\x83abc")
    assert main(["import", str(tmp_path / "junk.rlp"), "--datadir", str(target)]) == 1
    assert "undecodable block at byte 0" in capsys.readouterr().err


def test_import_rejects_another_chains_blocks(tmp_path, capsys, dev_accounts, sign_tx) -> None:
    with Node.init(tmp_path / "a", genesis.devnet(chain_id=999)) as node:
        node.mempool.add_raw(sign_tx(dev_accounts[1][1], 0, chain_id=999))
        node.produce_block()
    assert main(["export", str(tmp_path / "a.rlp"), "--datadir", str(tmp_path / "a")]) == 0
    Node.init(tmp_path / "b", genesis.devnet()).close()
    assert main(["import", str(tmp_path / "a.rlp"), "--datadir", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "block 1 (0x" in err and "invalid chain id: transaction has 999" in err
    with Node.open(tmp_path / "b") as node:
        assert node.head().block_number == 0


def test_keys_round_trip(tmp_path, capsys) -> None:
    password = tmp_path / "pw"
    password.write_text("correct horse\n")
    ks = str(tmp_path / "ks")
    assert main(["keys", "new", "--keystore", ks, "--password", str(password), "--lightkdf"]) == 0
    address = capsys.readouterr().out.split("Public address of the key: ")[1].split()[0]
    assert main(["keys", "list", "--keystore", ks]) == 0
    assert f"Account #0: {address}" in capsys.readouterr().out
    [(listed, path)] = keystore.list_keys(ks)
    assert listed == address and path.stat().st_mode & 0o777 == 0o600
    assert json.loads(path.read_text())["version"] == 3
    from eth_account import Account
    assert Account.from_key(keystore.load_key(path, "correct horse")).address == address
    with pytest.raises(keystore.KeystoreError, match="cannot decrypt"):
        keystore.load_key(path, "wrong")
    assert main(["keys", "new", "--keystore", ks, "--password", str(tmp_path / "nope")]) == 1
    assert "cannot read a password from" in capsys.readouterr().err
