"""Rebuild the L1 contracts' artifact (node/settlement/l1.json) from contracts/l1/*.sol over
OpenZeppelin Contracts with solc-js (node/solidity.py). `python -m node.settlement.build` writes
it; a test checks that the committed file is byte-identical to a fresh build."""
import pathlib
import sys

from node import solidity
from node.solidity import ROOT, SOLCJS, dumps

SOURCES = ROOT / "contracts" / "l1"
ARTIFACT = pathlib.Path(__file__).resolve().parent / "l1.json"
CONTRACTS = {f"{name}.sol": name for name in ("L1OpenToken", "BatchInbox", "OutputOracle", "L1Bridge")}


def build() -> dict:
    return solidity.build(SOURCES, CONTRACTS)


__all__ = ["ARTIFACT", "SOLCJS", "build", "dumps"]

if __name__ == "__main__":
    ARTIFACT.write_text(dumps(build()))
    print(f"wrote {ARTIFACT.relative_to(ROOT)}", file=sys.stderr)
