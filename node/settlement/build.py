"""Rebuild the L1 contracts' artifact (node/settlement/l1.json) from contracts/l1/*.sol over
OpenZeppelin Contracts (npm, pinned in package.json) with solc-js, as the governance predeploys
are built (tests/governance/build.py). `python -m node.settlement.build` writes it; a test checks
that the committed file is byte-identical to a fresh build. Needs node and node_modules (the node
itself only reads the committed artifact)."""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ROOT / "contracts" / "l1"
NODE_MODULES = ROOT / "node_modules"
SOLCJS = NODE_MODULES / "solc" / "solc.js"
ARTIFACT = pathlib.Path(__file__).resolve().parent / "l1.json"
CONTRACTS = ("L1OpenToken", "BatchInbox", "OutputOracle", "L1Bridge")
SETTINGS = {"evmVersion": "prague", "optimizer": {"enabled": True, "runs": 200},
            "metadata": {"bytecodeHash": "none", "appendCBOR": False}}
IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"', re.M)


def _sources() -> dict[str, dict[str, str]]:
    """Every source file the contracts import, keyed by import path (solc resolves by key)."""
    todo = {f"{name}.sol": SOURCES / f"{name}.sol" for name in CONTRACTS}
    out: dict[str, dict[str, str]] = {}
    while todo:
        key, path = todo.popitem()
        if key in out:
            continue
        text = path.read_text()
        out[key] = {"content": text}
        for imp in IMPORT.findall(text):
            if imp.startswith("."):
                imp = str(pathlib.Path("/" + str(pathlib.PurePosixPath(key).parent / imp)).resolve())[1:]
            todo.setdefault(imp, NODE_MODULES / imp if imp.startswith("@") else SOURCES / imp)
    return out


def build() -> dict:
    """{solc, openzeppelin, settings, contracts: {name: {abi, bytecode}}} from a fresh solc-js run."""
    request = {"language": "Solidity", "sources": _sources(),
               "settings": {**SETTINGS, "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    # files, not pipes: see tests/governance/build.py (solc-js cuts a piped answer short)
    with tempfile.TemporaryFile("w+") as f_in, tempfile.TemporaryFile("w+") as f_out:
        json.dump(request, f_in)
        f_in.seek(0)
        subprocess.run(["node", str(SOLCJS), "--standard-json"], stdin=f_in, stdout=f_out,
                       stderr=subprocess.DEVNULL, check=True, timeout=600, cwd=ROOT)
        f_out.seek(0)
        text = f_out.read()
    result = json.loads(text[text.index("{"):])
    errors = [e for e in result.get("errors", []) if e["severity"] == "error"]
    if errors:
        raise RuntimeError("solc: " + "; ".join(e["formattedMessage"] for e in errors))
    version = json.loads((NODE_MODULES / "solc" / "package.json").read_text())["version"]
    oz = json.loads((NODE_MODULES / "@openzeppelin" / "contracts" / "package.json").read_text())["version"]
    contracts = {}
    for name in CONTRACTS:
        c = result["contracts"][f"{name}.sol"][name]
        contracts[name] = {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
    return {"solc": version, "openzeppelin": oz, "settings": SETTINGS, "contracts": contracts}


def dumps(artifact: dict) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    ARTIFACT.write_text(dumps(build()))
    print(f"wrote {ARTIFACT.relative_to(ROOT)}", file=sys.stderr)
