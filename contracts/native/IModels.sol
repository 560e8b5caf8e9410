// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// ModelFactory native module: base models, training runs, adapters. ABI: vm/abi/Models.json.
interface IModels {
    event BaseModelRegistered(uint256 indexed modelId, address indexed owner, string name, bytes32 weightsHash);
    event TrainingRunCommitted(uint256 indexed runId, uint256 indexed datanetId, address indexed trainer,
        uint256 version, bytes32 dataRoot, uint256 baseModelId, bytes32 adapterHash);
    event AdapterRegistered(uint256 indexed adapterId, uint256 indexed runId, address indexed owner, uint256 pricePerInference);

    function registerBaseModel(string calldata name, bytes32 weightsHash) external returns (uint256 modelId);
    function commitTrainingRun(uint256 datanetId, uint256 version, uint256 baseModelId, bytes32 configHash,
        uint64 seed, bytes32 adapterHash, bytes32 metricsHash, bytes32 attributionIndexRoot)
        external returns (uint256 runId);
    function registerAdapter(uint256 runId, uint256 pricePerInference) external returns (uint256 adapterId);

    function baseModelCount() external view returns (uint256);
    function runCount() external view returns (uint256);
    function adapterCount() external view returns (uint256);
    function getBaseModel(uint256 modelId) external view returns (address owner, string memory name, bytes32 weightsHash);
    function getTrainingRun(uint256 runId) external view returns (address trainer, uint256 datanetId, uint256 version,
        bytes32 dataRoot, uint256 baseModelId, bytes32 configHash, uint64 seed, bytes32 adapterHash,
        bytes32 metricsHash, bytes32 attributionIndexRoot, uint256 blockNumber);
    function getAdapter(uint256 adapterId) external view returns (address owner, uint256 runId, uint256 pricePerInference);
}
