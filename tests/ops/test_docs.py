"""The dashboard and the example alerts name only families the node exports (node.metrics.FAMILIES),
so a renamed metric fails here rather than as an empty panel or an alert that never fires."""
from __future__ import annotations

import json
import pathlib
import re

import yaml

from node.metrics import FAMILIES

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
_NAME = re.compile(r"\b(openledger_[a-z0-9_]+|process_[a-z_]+)")
_SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def _known(name: str) -> bool:
    if name.startswith("process_"):
        return True  # prometheus_client's ProcessCollector
    families = {f.removesuffix("_total") for f in FAMILIES}
    base = name
    for suffix in _SUFFIXES:
        base = base.removesuffix(suffix)
    return base in families or name.removesuffix("_total") in families


def test_dashboard_queries_known_families():
    dashboard = json.loads((DOCS / "grafana" / "openledger.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    names = {n for e in exprs for n in _NAME.findall(e)}
    assert names and all(_known(n) for n in names), sorted(n for n in names if not _known(n))
    assert {"openledger_rpc_requests_total", "openledger_chain_block_seconds_bucket",
            "openledger_txpool_refused_total"} <= names
    network = {f for f in FAMILIES if f.startswith(("openledger_consensus_", "openledger_p2p_"))}
    queried = {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in names}
    assert network <= queried, sorted(network - queried)  # every consensus and p2p family is on the dashboard


def test_alert_rules_parse_and_query_known_families():
    text = (DOCS / "operating.md").read_text()
    block = re.search(r"```yaml\n(groups:.*?)```", text, re.S).group(1)
    rules = yaml.safe_load(block)["groups"][0]["rules"]
    assert len(rules) >= 8 and all({"alert", "expr", "labels", "annotations"} <= set(r) for r in rules)
    names = {n for r in rules for n in _NAME.findall(r["expr"])}
    assert all(_known(n) for n in names), sorted(n for n in names if not _known(n))
    described = {r["alert"] for r in rules if f"**{r['alert']}" in text}
    assert {r["alert"] for r in rules} - described <= {"OpenledgerRpcInternalErrors", "OpenledgerConnectionErrors"}
    assert {"openledger_consensus_votes_missed_total", "openledger_p2p_peers", "openledger_consensus_round",
            "openledger_consensus_height"} <= names  # the validator network's alerts
