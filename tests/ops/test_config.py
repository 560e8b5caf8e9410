"""One config file: every flag is a key, flags > file > defaults, unknown keys refused by name,
`openledger config dump` prints what a node would run with (and reads back the same)."""
from __future__ import annotations

import tomllib

import pytest

from node.cli import build_parser, main
from node.cli import config as config_cli


def dump(capsys, *argv: str) -> dict:
    assert main(["config", "dump", *argv]) == 0
    out = capsys.readouterr().out
    return tomllib.loads(out)


def error_of(capsys, *argv: str) -> str:
    assert main(list(argv)) == 1
    return capsys.readouterr().err


def test_flags_beat_the_file_which_beats_defaults(tmp_path, capsys):
    f = tmp_path / "node.toml"
    f.write_text('datadir = "/srv/ol"\n[http]\nport = 8600\napi = ["eth", "net", "ol"]\n[txpool]\nglobalslots = 100\n')
    table = dump(capsys, "--config", str(f), "--http.port", "9000")
    assert table["http"]["port"] == 9000  # flag over file
    assert table["http"]["api"] == ["eth", "net", "ol"] and table["txpool"]["globalslots"] == 100  # file over default
    assert table["txpool"]["accountslots"] == 16 and table["metrics"] == {"enabled": False, "addr": "127.0.0.1",
                                                                         "port": 6060}  # defaults
    assert table["datadir"] == "/srv/ol"


def test_dotted_keys_tables_and_enabled_are_one_thing(tmp_path, capsys):
    dotted, tables, bare = tmp_path / "a.toml", tmp_path / "b.toml", tmp_path / "c.toml"
    dotted.write_text("http.port = 8600\nmetrics.enabled = true\nmetrics.port = 7000\nready.maxage = 30\n")
    tables.write_text("[http]\nport = 8600\n[metrics]\nenabled = true\nport = 7000\n[ready]\nmaxage = 30.0\n")
    bare.write_text("metrics = true\nhttp.port = 8600\nready.maxage = 30\n")
    a, b, c = (dump(capsys, "--config", str(p)) for p in (dotted, tables, bare))
    assert a == b
    assert c["metrics"]["enabled"] is True and c["http"]["port"] == 8600


def test_dump_reads_back_the_same(tmp_path, capsys):
    first = dump(capsys, "--for", "devnet", "--param", "dispute_window_s=10", "--http.api", "eth,ol",
                 "--metrics", "--log.vmodule", "node.rpc=debug", "--txpool.rejournal", "30m")
    f = tmp_path / "node.toml"
    import tomli_w

    f.write_text(tomli_w.dumps(first))
    again = dump(capsys, "--for", "devnet", "--config", str(f))
    assert again == first
    assert first["param"] == ["dispute_window_s=10"] and first["txpool"]["rejournal"] == 1800.0


def test_a_repeatable_flag_on_the_command_line_replaces_the_files_list(tmp_path, capsys):
    f = tmp_path / "node.toml"
    f.write_text('param = ["dispute_window_s=10", "job_timeout_s=20"]\n')
    assert dump(capsys, "--for", "devnet", "--config", str(f))["param"] == ["dispute_window_s=10", "job_timeout_s=20"]
    assert dump(capsys, "--for", "devnet", "--config", str(f), "--param", "dispute_window_s=5")["param"] == \
        ["dispute_window_s=5"]


@pytest.mark.parametrize("text, message", [
    ("http.prot = 8545\n", "unknown key 'http.prot' (did you mean 'http.port'?)"),
    ("[metric]\nport = 1\n", "unknown key 'metric.port' (did you mean 'metrics.port'?)"),
    ("zzz = 1\n", "unknown key 'zzz'; known keys: "),
    ("config = 'other.toml'\n", "unknown key 'config'"),
    ("http.port = 70000\n", "http.port = 70000: invalid port 70000: want 0..65535"),
    ("http.port = 'x'\n", "http.port = 'x': invalid port 'x'"),
    ("metrics = 'yes'\n", "metrics = 'yes': want true or false"),
    ("log.format = 'xml'\n", "log.format = 'xml': want one of terminal, json"),
    ("log.level = 'loud'\n", "invalid log level 'loud'"),
    ("block-time = -1\n", "invalid --block-time '-1'"),
    ("http.port = \n", "is not valid TOML"),
])
def test_bad_files_are_refused_by_key(tmp_path, capsys, text, message):
    f = tmp_path / "node.toml"
    f.write_text(text)
    err = error_of(capsys, "run", "--config", str(f))
    assert message in err and str(f) in err, err


def test_a_missing_file_is_named(tmp_path, capsys):
    assert "cannot read config file" in error_of(capsys, "devnet", "--config", str(tmp_path / "none.toml"))


def test_flags_added_later_are_keys_at_once(tmp_path):
    """Keys come from the parser: another module's new flag needs no change to the loader."""
    run = config_cli._command(build_parser(), ["run"])
    run.add_argument("--p2p.port", dest="p2p_port", type=int, default=30303)
    run.add_argument("--p2p.bootnodes", dest="p2p_bootnodes", action="append", default=[])
    f = tmp_path / "node.toml"
    f.write_text('[p2p]\nport = 30304\nbootnodes = ["/ip4/10.0.0.1/tcp/30303"]\n')
    loaded = config_cli.load(f, run)
    assert loaded["p2p.port"][1] == 30304 and loaded["p2p.bootnodes"][1] == ["/ip4/10.0.0.1/tcp/30303"]


def test_run_from_a_config_file(validator_run):
    """`openledger run --config node.toml --http.port P`: served where the file says, except what
    the flag overrides (the run itself: tests/ops/conftest.py `validator_run`)."""
    seen = validator_run["seen"]
    assert "result" in seen["txpool_status"]  # the file's http.api
    assert seen["metrics_health"] == 200 and seen["metrics_ready"] == 200  # the file's metrics
    assert seen["file_port_answers"] is False  # the flag beat the file's port


def test_a_commands_own_config_flag_stays_its_own(tmp_path):
    """`openledger train --config run.toml` names a training config, not a node config file."""
    f = tmp_path / "run.toml"
    f.write_text('[training]\ntask = "causal-lm"\n')
    parser = build_parser()
    argv = ["train", "--config", str(f), "--data", "rows.jsonl", "--base", "tiny-llama", "--out", "run"]
    config_cli.apply(parser, argv)  # refuses nothing: train has no node config
    assert parser.parse_args(argv).config == str(f)


def test_a_switch_with_a_no_form_takes_true_or_false(tmp_path, capsys):
    """`--ui/--no-ui` on devnet: the file's `ui = false` turns the studio off, a word is refused."""
    off, bad = tmp_path / "off.toml", tmp_path / "bad.toml"
    off.write_text("ui = false\n")
    bad.write_text('ui = "no"\n')
    assert dump(capsys, "--for", "devnet")["ui"] is True
    assert dump(capsys, "--for", "devnet", "--config", str(off))["ui"] is False
    assert dump(capsys, "--for", "devnet", "--config", str(off), "--ui")["ui"] is True
    assert "ui = 'no': want true or false" in error_of(capsys, "config", "dump", "--for", "devnet", "--config", str(bad))
