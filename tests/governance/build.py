"""Rebuild the governance predeploys' bytecode from source: OpenZeppelin Contracts and
contracts/governance/*.sol, compiled with solc-js (node/solidity.py). The result is what
vm/governance.json holds; `python -m tests.governance.build` writes it, and a test checks that the
committed file is byte-identical to a fresh build."""
import sys

from node import solidity
from node.solidity import ROOT, SOLCJS, dumps

SOURCES = ROOT / "contracts" / "governance"
ARTIFACT = ROOT / "vm" / "governance.json"
CONTRACTS = {"GOPEN.sol": "GOPEN", "Timelock.sol": "OpenTimelock", "OpenGovernor.sol": "OpenGovernor"}


def build() -> dict:
    return solidity.build(SOURCES, CONTRACTS)


__all__ = ["ARTIFACT", "SOLCJS", "build", "dumps"]

if __name__ == "__main__":
    ARTIFACT.write_text(dumps(build()))
    print(f"wrote {ARTIFACT.relative_to(ROOT)}", file=sys.stderr)
