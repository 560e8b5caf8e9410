// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// ModelFactory training jobs native module: a builder pays OPEN for a LoRA run on a Datanet
/// version, a staked validator trains it, others verify it by replaying segments, and the
/// version's contributors earn its data-use fee. ABI: vm/abi/TrainingJobs.json.
interface ITrainingJobs {
    event DataUsePriceSet(uint256 indexed datanetId, uint256 indexed version, uint256 price);
    event TrainingRequested(uint256 indexed jobId, uint256 indexed datanetId, address indexed requester,
        uint256 version, uint256 baseModelId, bytes32 configBlobHash, uint256 fee, uint256 dataUseFee, uint256 seed);
    event TrainingClaimed(uint256 indexed jobId, address indexed trainer, uint256 submitDeadline);
    event RunSubmitted(uint256 indexed jobId, address indexed trainer, bytes32 recordHash, bytes32 manifestHash,
        uint256 segmentCount);
    event RunAttested(uint256 indexed jobId, address indexed validator, bool valid, uint256[] segments,
        bytes32 evidenceHash);
    event DataUseFeePaid(uint256 indexed jobId, address indexed contributor, uint256 indexed datanetId,
        uint256 version, uint256 amount);
    event TrainingCompleted(uint256 indexed jobId, uint256 indexed runId, address indexed trainer, uint256 trainerFee,
        uint256 verifierFee, uint256 dataUseFee, uint256 treasuryDust);
    event TrainingFailed(uint256 indexed jobId, address indexed trainer, uint8 status, uint256 refund);

    function setDataUsePrice(uint256 datanetId, uint256 version, uint256 price) external;
    function requestTraining(uint256 datanetId, uint256 version, uint256 baseModelId, bytes32 configBlobHash,
        uint256 maxFee) external payable returns (uint256 jobId);
    function claimJob(uint256 jobId) external;
    function submitRun(uint256 jobId, bytes32 recordHash, bytes32 manifestHash, bytes32 configHash,
        bytes32 adapterHash, bytes32 metricsHash, bytes32 attributionIndexRoot, uint256 segmentCount) external;
    function attest(uint256 jobId, bool valid, uint256[] calldata segments, bytes32 evidenceHash) external;
    function finalise(uint256 jobId) external;

    function jobCount() external view returns (uint256);
    function dataUsePrice(uint256 datanetId, uint256 version) external view returns (uint256);
    function getJob(uint256 jobId) external view returns (address requester, uint256 datanetId, uint256 version,
        uint256 baseModelId, bytes32 configBlobHash, uint256 fee, uint256 dataUseFee, uint256 seed, uint8 status,
        uint256 deadline, address trainer, uint256 runId);
    function getRun(uint256 jobId) external view returns (bytes32 recordHash, bytes32 manifestHash, bytes32 configHash,
        bytes32 adapterHash, bytes32 metricsHash, bytes32 attributionIndexRoot, uint256 segmentCount,
        uint256 submitBlock, uint256 validVotes, uint256 invalidVotes);
    function challengeSegments(uint256 jobId, address validator) external view returns (uint256[] memory);
    function attestation(uint256 jobId, address validator) external view returns (uint8);
}
