"""Rebuild the governance predeploys' bytecode from source: OpenZeppelin Contracts (npm, pinned in
package.json) and contracts/governance/*.sol, compiled with solc-js. The result is what
vm/governance.json holds; `python -m tests.governance.build` writes it, and a test checks that the
committed file is byte-identical to a fresh build."""
import json
import pathlib
import re
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ROOT / "contracts" / "governance"
NODE_MODULES = ROOT / "node_modules"
SOLCJS = NODE_MODULES / "solc" / "solc.js"
ARTIFACT = ROOT / "vm" / "governance.json"
CONTRACTS = {"GOPEN.sol": "GOPEN", "Timelock.sol": "OpenTimelock", "OpenGovernor.sol": "OpenGovernor"}
SETTINGS = {"evmVersion": "prague", "optimizer": {"enabled": True, "runs": 200},
            "metadata": {"bytecodeHash": "none", "appendCBOR": False}}
IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"', re.M)


def _sources() -> dict[str, dict[str, str]]:
    """Every source file the contracts import, keyed by import path (solc resolves by key)."""
    todo = {name: SOURCES / name for name in CONTRACTS}
    out: dict[str, dict[str, str]] = {}
    while todo:
        key, path = todo.popitem()
        if key in out:
            continue
        text = path.read_text()
        out[key] = {"content": text}
        for imp in IMPORT.findall(text):
            if imp.startswith("."):
                imp_key = str(pathlib.PurePosixPath(key).parent.joinpath(imp))
                imp_key = str(pathlib.Path("/" + imp_key).resolve())[1:]
            else:
                imp_key = imp
            todo.setdefault(imp_key, NODE_MODULES / imp_key if imp_key.startswith("@") else SOURCES / imp_key)
    return out


def build() -> dict:
    """{solc, openzeppelin, settings, contracts: {name: {abi, bytecode}}} from a fresh solc-js run."""
    request = {"language": "Solidity", "sources": _sources(),
               "settings": {**SETTINGS, "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}}}}
    # Request and answer go through files, not pipes: solc-js reads stdin with readFileSync (EAGAIN
    # on a pipe not filled yet) and exits before a piped stdout is flushed (the answer was cut
    # at 128 KiB).
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
    for file, name in CONTRACTS.items():
        c = result["contracts"][file][name]
        contracts[name] = {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
    return {"solc": version, "openzeppelin": oz, "settings": SETTINGS, "contracts": contracts}


def dumps(artifact: dict) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    ARTIFACT.write_text(dumps(build()))
    print(f"wrote {ARTIFACT.relative_to(ROOT)}", file=sys.stderr)
