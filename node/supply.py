"""The OPEN supply identity audited from the whole state: every account's balance, by walking the
state trie of a block (`ol_getSupply` with `audit`). The Economics module's own view (reserve,
locked, burned) is what the identity is checked against, so an account created or paid outside
the rules would show as a gap."""
from __future__ import annotations

import rlp
from eth.rlp.accounts import Account as RlpAccount
from eth_utils import keccak
from trie import HexaryTrie
from trie.iter import NodeIterator

from genesis import RESERVE_ADDRESS, TOTAL_SUPPLY
from vm.modules.system import ECONOMICS, VESTING

_BURNED = 100  # Economics storage (vm/modules/economics.py)


def audit(node, header) -> dict[str, int | bool]:
    """circulating (every balance but the reserve's and the vesting account's), reserve, locked,
    burned, their sum and whether it is the fixed total supply, at `header`."""
    trie = HexaryTrie(node.db, header.state_root)
    balances: dict[bytes, int] = {}
    it = NodeIterator(trie)
    key = it.next()
    while key is not None:
        balances[key] = rlp.decode(trie[key], sedes=RlpAccount).balance
        key = it.next(key)
    reserve, locked = balances.get(keccak(RESERVE_ADDRESS), 0), balances.get(keccak(VESTING), 0)
    burned = node.state_at(header).get_storage(ECONOMICS, _BURNED)
    circulating = sum(balances.values()) - reserve - locked
    total = circulating + reserve + locked + burned
    return {"accounts": len(balances), "circulating": circulating, "reserve": reserve, "locked": locked,
            "burned": burned, "sum": total, "holds": total == TOTAL_SUPPLY}
