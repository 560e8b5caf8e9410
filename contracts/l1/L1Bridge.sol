// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {TrieProof} from "@openzeppelin/contracts/utils/cryptography/TrieProof.sol";
import {OutputOracle} from "./OutputOracle.sol";

/// @title L1Bridge: OPEN locked here on deposit, released on a withdrawal proven against a posted
/// L2 output root once the finalization period has passed (OP Stack's OptimismPortal, for OPEN).
/// @notice A deposit is an event only: every L2 node reads it from L1 logs, and after a fixed
/// number of L1 confirmations the L2 validator relays it as a transaction that releases the
/// amount from the L2 bridge account's escrow (nothing is minted on either side).
/// A withdrawal is recorded by the L2 bridge module in its own storage: `sent[hash] = 1` in the
/// mapping at slot 0 of account 0x...4F4C07, where hash = keccak256(abi.encode(id, sender, to,
/// amount)). It is proven with the eth_getProof storage proof of that slot against the
/// withdrawals storage root inside a posted output root; the Merkle-Patricia verification is
/// OpenZeppelin's TrieProof (itself based on Optimism's MerkleTrie.sol).
/// Forced transactions (OptimismPortal.depositTransaction, Arbitrum's delayed inbox): anyone may
/// hand this contract a signed raw L2 transaction; it is numbered and logged, and every L2 node
/// derives the same queue from the logs. The L2 proposer must include each one, in order, within
/// the sequencing window (as an executed transaction, or as a failed one when it cannot execute),
/// or every deriving node refuses the chain: a validator set that censors a user cannot keep a
/// valid chain. See docs/settlement.md.
contract L1Bridge {
    using SafeERC20 for IERC20;

    struct Withdrawal {
        uint256 id;
        address sender; // on L2
        address to; // on L1
        uint256 amount;
    }

    struct OutputRootProof {
        bytes32 stateRoot;
        bytes32 withdrawalsStorageRoot;
        bytes32 blockHash;
    }

    struct Proven {
        uint64 timestamp;
        uint64 outputIndex;
    }

    uint256 public constant SENT_SLOT = 0;
    /// @notice Largest forced transaction: the L2 relay carries it again in its own calldata.
    uint256 public constant MAX_FORCED_TX_BYTES = 16_384;

    IERC20 public immutable token;
    OutputOracle public immutable oracle;
    uint256 public immutable finalizationPeriod;
    uint256 public depositCount;
    uint256 public forcedCount;
    mapping(bytes32 => Proven) public proven;
    mapping(bytes32 => bool) public finalized;

    event DepositInitiated(uint256 indexed depositId, address indexed from, address indexed to, uint256 amount);
    event TransactionForced(uint256 indexed forcedId, address indexed from, bytes32 indexed txHash, bytes transaction);
    event WithdrawalProven(bytes32 indexed withdrawalHash, uint256 indexed outputIndex, address to, uint256 amount);
    event WithdrawalFinalized(bytes32 indexed withdrawalHash, address indexed to, uint256 amount);

    error ZeroAmount();
    error RecipientIsZeroAddress();
    error RecipientIsSystemAddress(address to);
    error OutputRootMismatch(uint256 outputIndex);
    error WithdrawalNotInOutput(bytes32 withdrawalHash);
    error AlreadyFinalized(bytes32 withdrawalHash);
    error NotProven(bytes32 withdrawalHash);
    error FinalizationPeriodNotOver(uint256 readyAt);
    error EmptyTransaction();
    error TransactionTooLarge(uint256 size, uint256 max);
    error UnsupportedTransactionType(uint8 firstByte);

    constructor(IERC20 token_, OutputOracle oracle_, uint256 finalizationPeriod_) {
        token = token_;
        oracle = oracle_;
        finalizationPeriod = finalizationPeriod_;
    }

    /// @notice Lock `amount` OPEN (approved to this bridge) for `to` on the L2. Addresses up to
    /// 2^32 are the L2's precompiles and system accounts (native modules, reserve, vesting,
    /// governance): a deposit there could never be spent, so it is refused here.
    function deposit(address to, uint256 amount) external {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert RecipientIsZeroAddress();
        if (uint160(to) <= type(uint32).max) revert RecipientIsSystemAddress(to);
        token.safeTransferFrom(msg.sender, address(this), amount);
        emit DepositInitiated(depositCount++, msg.sender, to, amount);
    }

    /// @notice Queue a signed raw L2 transaction (legacy EIP-155, EIP-2930 or EIP-1559 encoding,
    /// as for eth_sendRawTransaction) for forced inclusion on the L2. Its L2 hash is
    /// keccak256(transaction). Whether it executes is decided on the L2 when it is included
    /// (signature, chain id, nonce, balance, gas): one that cannot is included as failed, with the
    /// reason in the L2 log `ForcedTransactionFailed`.
    function forceTransaction(bytes calldata transaction) external {
        if (transaction.length == 0) revert EmptyTransaction();
        if (transaction.length > MAX_FORCED_TX_BYTES) {
            revert TransactionTooLarge(transaction.length, MAX_FORCED_TX_BYTES);
        }
        uint8 first = uint8(transaction[0]);
        if (first != 1 && first != 2 && first < 0xc0) revert UnsupportedTransactionType(first);
        emit TransactionForced(forcedCount++, msg.sender, keccak256(transaction), transaction);
    }

    function withdrawalHash(Withdrawal calldata w) public pure returns (bytes32) {
        return keccak256(abi.encode(w.id, w.sender, w.to, w.amount));
    }

    function outputRoot(OutputRootProof calldata p) public pure returns (bytes32) {
        return keccak256(abi.encode(bytes32(0), p.stateRoot, p.withdrawalsStorageRoot, p.blockHash));
    }

    /// @param proof the `storageProof[0].proof` nodes of eth_getProof(0x...4F4C07, [slot]) at the
    /// output's L2 block, slot = keccak256(abi.encode(withdrawalHash, 0))
    function proveWithdrawal(
        Withdrawal calldata w,
        uint256 outputIndex,
        OutputRootProof calldata rootProof,
        bytes[] calldata proof
    ) external {
        bytes32 hash = withdrawalHash(w);
        if (finalized[hash]) revert AlreadyFinalized(hash);
        if (oracle.getOutput(outputIndex).outputRoot != outputRoot(rootProof)) revert OutputRootMismatch(outputIndex);
        bytes32 slot = keccak256(abi.encode(hash, SENT_SLOT));
        bytes memory key = abi.encodePacked(keccak256(abi.encode(slot)));
        bool included;
        try this.verifyStorageProof(rootProof.withdrawalsStorageRoot, key, proof) returns (bool ok) {
            included = ok;
        } catch {} // TrieProof reverts on some malformed proofs (RLP errors): not included either
        if (!included) revert WithdrawalNotInOutput(hash);
        proven[hash] = Proven(uint64(block.timestamp), uint64(outputIndex));
        emit WithdrawalProven(hash, outputIndex, w.to, w.amount);
    }

    /// @notice Whether `proof` proves storage value 1 at trie key `key` under `root`.
    function verifyStorageProof(bytes32 root, bytes calldata key, bytes[] calldata proof) external pure returns (bool) {
        return TrieProof.verify(hex"01", root, key, proof);
    }

    function finalizeWithdrawal(Withdrawal calldata w) external {
        bytes32 hash = withdrawalHash(w);
        if (finalized[hash]) revert AlreadyFinalized(hash);
        Proven memory p = proven[hash];
        if (p.timestamp == 0) revert NotProven(hash);
        if (block.timestamp < p.timestamp + finalizationPeriod) {
            revert FinalizationPeriodNotOver(p.timestamp + finalizationPeriod);
        }
        finalized[hash] = true;
        token.safeTransfer(w.to, w.amount);
        emit WithdrawalFinalized(hash, w.to, w.amount);
    }
}
