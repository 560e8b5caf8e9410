"""Build a contracts artifact (ABI and bytecode per contract, with the compiler's and OpenZeppelin's
versions and the settings) from Solidity sources with solc-js, both from npm (pinned in
package.json). Two artifacts are built this way and committed: the governance predeploys
(vm/governance.json, tests/governance/build.py) and the L1 settlement contracts
(node/settlement/l1.json, node/settlement/build.py); a test of each checks the committed file
is byte-identical to a fresh build. Needs node and node_modules: the node itself only reads the
committed artifacts."""
import json
import pathlib
import re
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
NODE_MODULES = ROOT / "node_modules"
SOLCJS = NODE_MODULES / "solc" / "solc.js"
SETTINGS = {"evmVersion": "prague", "optimizer": {"enabled": True, "runs": 200},
            "metadata": {"bytecodeHash": "none", "appendCBOR": False}}
IMPORT = re.compile(r'^\s*import\s+(?:\{[^}]*\}\s+from\s+)?"([^"]+)"', re.M)


def _sources(folder: pathlib.Path, files) -> dict[str, dict[str, str]]:
    """Every source file `files` (in `folder`) import, keyed by import path (solc resolves by key)."""
    todo = {name: folder / name for name in files}
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
            todo.setdefault(imp, NODE_MODULES / imp if imp.startswith("@") else folder / imp)
    return out


def build(folder: pathlib.Path, contracts: dict[str, str]) -> dict:
    """{solc, openzeppelin, settings, contracts: {name: {abi, bytecode}}} from a fresh solc-js run
    over `contracts` ({file in `folder`: contract name})."""
    request = {"language": "Solidity", "sources": _sources(folder, contracts),
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
    out = {}
    for file, name in contracts.items():
        c = result["contracts"][file][name]
        out[name] = {"abi": c["abi"], "bytecode": "0x" + c["evm"]["bytecode"]["object"]}
    return {"solc": version, "openzeppelin": oz, "settings": SETTINGS, "contracts": out}


def dumps(artifact: dict) -> str:
    return json.dumps(artifact, indent=1, sort_keys=True) + "\n"
