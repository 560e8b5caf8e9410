"""Settlement on an L1 (issue #15, docs/settlement.md): the L1 contracts' client, the batcher and
proposer the node runs with `--l1`, deposits relayed from L1 logs, withdrawals proven with
eth_getProof, and derivation of the L2 chain from L1 data alone.

A folder of its own under node/ (DESIGN: one folder per concern) because all of it is L1 I/O:
the state machine side is one native module (vm.modules.bridge) and knows nothing of the L1."""
from node.settlement.deployment import Deployment, deploy_all
from node.settlement.l1 import L1, Contract, L1Error

__all__ = ["Contract", "Deployment", "L1", "L1Error", "deploy_all"]
