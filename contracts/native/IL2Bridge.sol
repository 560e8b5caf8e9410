// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// L2 side of the OPEN bridge (native module at 0x...4F4C07; ABI: vm/abi/L2Bridge.json). Its
/// balance is the escrow of OPEN that lives on the L1: a relayed deposit pays out of it, a
/// withdrawal pays into it, so the L2 supply never changes. Withdrawal records live in the mapping
/// `sent` at slot 0 of this account (sent[keccak256(abi.encode(id, sender, to, amount))] = 1),
/// which the L1Bridge verifies with an eth_getProof storage proof. Forced transactions (signed raw
/// L2 transactions queued on the L1Bridge) are relayed by the proposer in L1 order: one that can
/// execute must be the very next transaction of the block (a block without it is invalid), one that
/// cannot is consumed as failed with the reason. See docs/settlement.md.
interface IL2Bridge {
    event DepositFinalized(uint256 indexed depositId, address indexed to, uint256 amount);
    event WithdrawalInitiated(uint256 indexed id, address indexed sender, address indexed to, uint256 amount,
                              bytes32 withdrawalHash);

    event ForcedTransactionQueued(uint256 indexed forcedId, bytes32 indexed txHash, address indexed sender,
                                  uint256 nonce);
    event ForcedTransactionFailed(uint256 indexed forcedId, bytes32 indexed txHash, string reason);

    /// The block's proposer relays L1 deposit `depositId` (strictly in order, each once).
    function relayDeposit(uint256 depositId, address to, uint256 amount) external;
    /// The block's proposer relays L1 forced transaction `forcedId` (strictly in order, each once).
    function relayForced(uint256 forcedId, bytes calldata transaction) external;
    /// Send msg.value OPEN to `to` on the L1 (claimable there once proven and the window has passed).
    function withdraw(address to) external payable returns (uint256 id, bytes32 withdrawalHash);

    function nextDepositId() external view returns (uint256);
    function nextForcedId() external view returns (uint256);
    function withdrawalCount() external view returns (uint256);
    function withdrawalSent(bytes32 withdrawalHash) external view returns (bool);
}
