"""Compile the test contracts with solc-js from npm (node_modules/solc), Prague EVM."""
import functools
import json
import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOLCJS = ROOT / "node_modules" / "solc" / "solc.js"
CONTRACTS = pathlib.Path(__file__).resolve().parent / "contracts"


def available() -> bool:
    return SOLCJS.exists() and shutil.which("node") is not None


@functools.lru_cache(maxsize=None)  # one solc-js run per contract per test process
def compile_contract(name: str, directory: pathlib.Path = CONTRACTS) -> tuple[list, bytes]:
    """(abi, creation bytecode) of `<directory>/<name>.sol`'s contract `name`."""
    source = (directory / f"{name}.sol").read_text()
    request = {
        "language": "Solidity",
        "sources": {f"{name}.sol": {"content": source}},
        "settings": {"evmVersion": "prague", "optimizer": {"enabled": True, "runs": 200},
                     "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}},
    }
    out = subprocess.run(["node", str(SOLCJS), "--standard-json"], input=json.dumps(request),
                         capture_output=True, text=True, check=True, timeout=120, cwd=ROOT)
    result = json.loads(out.stdout[out.stdout.index("{"):])
    errors = [e for e in result.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise RuntimeError("solc: " + "; ".join(e["formattedMessage"] for e in errors))
    contract = result["contracts"][f"{name}.sol"][name]
    return contract["abi"], bytes.fromhex(contract["evm"]["bytecode"]["object"])
