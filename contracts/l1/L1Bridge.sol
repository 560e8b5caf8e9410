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

    IERC20 public immutable token;
    OutputOracle public immutable oracle;
    uint256 public immutable finalizationPeriod;
    uint256 public depositCount;
    mapping(bytes32 => Proven) public proven;
    mapping(bytes32 => bool) public finalized;

    event DepositInitiated(uint256 indexed depositId, address indexed from, address indexed to, uint256 amount);
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
