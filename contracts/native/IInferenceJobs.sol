// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// OpenLoRA inference jobs native module. ABI: vm/abi/InferenceJobs.json.
interface IInferenceJobs {
    event InferenceRequested(uint256 indexed jobId, uint256 indexed adapterId, address indexed requester,
        bytes32 promptHash, uint256 fee);
    event ResultSubmitted(uint256 indexed jobId, address indexed validator, bytes32 outputHash, bytes32 activationCommitment);
    event Attested(uint256 indexed jobId, address indexed validator, bool valid);
    event JobFinalised(uint256 indexed jobId, bool success, uint256 fee);

    function requestInference(uint256 adapterId, bytes32 promptHash, uint256 maxFee) external payable returns (uint256 jobId);
    function submitResult(uint256 jobId, bytes32 outputHash, bytes32 activationCommitment) external;
    function attest(uint256 jobId, bool valid) external;
    function finalise(uint256 jobId) external;

    function jobCount() external view returns (uint256);
    function getJob(uint256 jobId) external view returns (address requester, uint256 adapterId, bytes32 promptHash,
        uint256 fee, uint8 status, address submitter, bytes32 outputHash, bytes32 activationCommitment,
        uint256 validVotes, uint256 invalidVotes, uint256 deadline);
    function attestation(uint256 jobId, address validator) external view returns (uint8);
}
