// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Proof of Attribution native module: proofs, disputes, fee split. ABI: vm/abi/Attribution.json.
interface IAttribution {
    event ProofPosted(uint256 indexed jobId, address indexed poster, bytes32 proofHash, uint32 methodId, uint256 disputeDeadline);
    event ProofDisputed(uint256 indexed jobId, address indexed disputer, bytes32 reasonHash);
    event FeeSplit(uint256 indexed jobId, uint256 contributors, uint256 modelOwner, uint256 validators, uint256 treasury);
    event RewardPaid(address indexed account, uint256 indexed jobId, uint8 role, uint256 amount);
    /// The open proof was rejected: `attestationQuorum` disputes (upheld: the poster slashed `slashed`
    /// wei of self stake) or fewer when its window closed (slashed 0). The job awaits a new proof.
    event ProofRejected(uint256 indexed jobId, address indexed poster, uint256 disputes, uint256 slashed);
    /// No proof was open or paid `proofTimeoutSeconds` after the job succeeded: its fee was split with
    /// the contributors' part to the treasury.
    event SettledWithoutProof(uint256 indexed jobId, address indexed caller);

    function postProof(uint256 jobId, bytes32 outputHash, bytes32 proofHash, uint32 methodId,
        bytes32[] calldata contentHashes, uint32[] calldata weightsPpm) external;
    function disputeProof(uint256 jobId, bytes32 reasonHash) external;
    function finaliseProof(uint256 jobId) external;
    function finaliseWithoutProof(uint256 jobId) external;

    function getProof(uint256 jobId) external view returns (address poster, bytes32 proofHash, uint32 methodId,
        uint8 status, uint256 disputeDeadline, uint256 entryCount, uint256 disputeCount);
    function proofEntry(uint256 jobId, uint256 index) external view
        returns (bytes32 contentHash, address contributor, uint32 weightPpm);
    /// When a succeeded job with no proof open or paid may be settled without one (0: no timeout).
    function proofDeadline(uint256 jobId) external view returns (uint256);
    function hasDisputed(uint256 jobId, address validator) external view returns (bool);
}
