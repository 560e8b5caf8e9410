"""Genesis files on disk in either format: ours, or a go-ethereum genesis.json (see genesis.geth)."""
from __future__ import annotations

import json
import pathlib

from genesis import geth
from genesis.params import Genesis, GenesisError, from_dict, to_dict


def to_json(g: Genesis) -> str:
    """The genesis as the file it was read from: geth's format for an imported chain, else ours."""
    if g.ethereum is not None:
        return geth.to_json(g)
    return json.dumps(to_dict(g), indent=2)


def load(path: str | pathlib.Path) -> Genesis:
    """Read a genesis JSON file; a missing file or bad JSON is a GenesisError naming the path."""
    p = pathlib.Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise GenesisError(f"genesis: cannot read {str(p)!r}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise GenesisError(f"genesis: {str(p)!r} is not valid JSON: {e}") from None
    return geth.from_geth(data) if geth.is_geth_format(data) else from_dict(data)
