"""Output roots (OP Stack's version 0) and the validators' EIP-712 signatures over them.

output root = keccak256(abi.encode(bytes32(0), stateRoot, withdrawalsStorageRoot, blockHash)),
where withdrawalsStorageRoot is the storage root of the L2 bridge account (its `sent` mapping
holds every withdrawal). The digest is computed here, not asked of the L1, so a validator signs
only what it checked itself; tests compare it with OutputOracle.outputDigest."""
from __future__ import annotations

import dataclasses

import eth_abi
import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.rlp.accounts import Account as RlpAccount
from eth_keys import keys
from eth_utils import keccak, to_canonical_address
from trie import HexaryTrie

from genesis import L2_BRIDGE_ADDRESS

OUTPUT_TYPE = b"Output(uint256 l2ChainId,uint64 l2BlockNumber,bytes32 outputRoot,bytes32 nextValidatorSetHash)"
DOMAIN_TYPE = b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
DOMAIN_NAME, DOMAIN_VERSION = b"OpenLedger OutputOracle", b"1"


@dataclasses.dataclass(frozen=True)
class Output:
    block_number: int
    state_root: bytes
    withdrawals_root: bytes
    block_hash: bytes

    @property
    def root(self) -> bytes:
        return keccak(eth_abi.encode(["bytes32"] * 4, [b"\x00" * 32, self.state_root, self.withdrawals_root,
                                                       self.block_hash]))

    def proof_tuple(self) -> tuple[bytes, bytes, bytes]:
        """L1Bridge's OutputRootProof."""
        return self.state_root, self.withdrawals_root, self.block_hash


def storage_root(db, state_root: bytes, address: bytes) -> bytes:
    raw = HexaryTrie(db, state_root).get(keccak(address))
    return rlp.decode(raw, sedes=RlpAccount).storage_root if raw else BLANK_ROOT_HASH


def output_at(node, number: int) -> Output:
    """The output of the node's block `number`."""
    header = node.header_by_number(number)
    if header is None:
        raise LookupError(f"no L2 block {number}")
    db = node.evm_chain().chaindb.db
    return Output(number, header.state_root, storage_root(db, header.state_root, L2_BRIDGE_ADDRESS), header.hash)


def validator_set_hash(validators: list[tuple[bytes, int]]) -> bytes:
    return keccak(eth_abi.encode(["(address,uint256)[]"], [[(a, s) for a, s in validators]]))


def output_digest(l1_chain_id: int, oracle: str, l2_chain_id: int, block_number: int, root: bytes,
                  next_set_hash: bytes) -> bytes:
    domain = keccak(eth_abi.encode(["bytes32", "bytes32", "bytes32", "uint256", "address"], [
        keccak(DOMAIN_TYPE), keccak(DOMAIN_NAME), keccak(DOMAIN_VERSION), l1_chain_id, to_canonical_address(oracle)]))
    struct = keccak(eth_abi.encode(["bytes32", "uint256", "uint64", "bytes32", "bytes32"],
                                   [keccak(OUTPUT_TYPE), l2_chain_id, block_number, root, next_set_hash]))
    return keccak(b"\x19\x01" + domain + struct)


def sign_digest(key: bytes | str, digest: bytes) -> tuple[bytes, bytes]:
    """(signer address, 65-byte r || s || v signature with v in {27, 28})."""
    private = keys.PrivateKey(bytes.fromhex(key[2:]) if isinstance(key, str) else key)
    sig = private.sign_msg_hash(digest)
    return private.public_key.to_canonical_address(), sig.to_bytes()[:64] + bytes([sig.v + 27])


def signatures(keys_: list, digest: bytes) -> list[bytes]:
    """Signatures by every key, in ascending signer order (as OutputOracle requires)."""
    return [sig for _, sig in sorted(sign_digest(k, digest) for k in keys_)]
