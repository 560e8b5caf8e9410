// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title BatchInbox: where the L2's blocks are posted as calldata (op-batcher's inbox, Arbitrum's
/// SequencerInbox).
/// @notice Only the registered batcher may append, and each batch must start at the next L2 block
/// not yet posted: a batch posted twice (a batcher restarted mid-post) is refused, and no block can
/// be skipped. The calldata is the data; the event names the range and its hash, so a deriving
/// node finds every batch through eth_getLogs and reads its bytes from the transaction input.
contract BatchInbox {
    address public immutable batcher;
    bytes32 public immutable l2GenesisHash;
    uint64 public nextBlock = 1;
    uint256 public batchCount;

    event BatchAppended(uint256 indexed index, uint64 firstBlock, uint64 lastBlock, bytes32 dataHash);

    error NotBatcher(address sender);
    error WrongFirstBlock(uint64 expected, uint64 got);
    error EmptyBatch();

    constructor(address batcher_, bytes32 l2GenesisHash_) {
        batcher = batcher_;
        l2GenesisHash = l2GenesisHash_;
    }

    /// @param data compressed RLP list of the L2 blocks firstBlock..lastBlock (see docs/settlement.md)
    function appendBatch(uint64 firstBlock, uint64 lastBlock, bytes calldata data) external {
        if (msg.sender != batcher) revert NotBatcher(msg.sender);
        if (firstBlock != nextBlock) revert WrongFirstBlock(nextBlock, firstBlock);
        if (lastBlock < firstBlock || data.length == 0) revert EmptyBatch();
        nextBlock = lastBlock + 1;
        emit BatchAppended(batchCount++, firstBlock, lastBlock, keccak256(data));
    }
}
