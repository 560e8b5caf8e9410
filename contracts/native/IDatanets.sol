// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Datanets native module (stateful precompile). Its ABI JSON is vm/abi/Datanets.json.
interface IDatanets {
    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, uint8 dataType, uint8 accessPolicy);
    event AllowlistUpdated(uint256 indexed datanetId, address indexed account, bool allowed);
    event Contributed(uint256 indexed datanetId, bytes32 indexed contentHash, address indexed contributor, uint64 size, uint256 index);
    event Curated(uint256 indexed datanetId, bytes32 indexed contentHash, address indexed curator, bool accepted, uint8 score);
    event VersionPublished(uint256 indexed datanetId, uint256 indexed version, bytes32 root, uint256 count);

    function createDatanet(string calldata name, bytes32 descriptionHash, uint8 dataType, string calldata license,
        uint8 accessPolicy, uint256 contributionFee, uint64 dailyByteLimit, address[] calldata curators)
        external returns (uint256 datanetId);
    function setAllowed(uint256 datanetId, address account, bool allowed) external;
    function contribute(uint256 datanetId, bytes32 contentHash, uint64 size) external payable returns (uint256 index);
    function curate(uint256 datanetId, bytes32 contentHash, bool accept, uint8 score) external;
    function publishVersion(uint256 datanetId) external returns (uint256 version, bytes32 root);

    function datanetCount() external view returns (uint256);
    function getDatanet(uint256 datanetId) external view returns (address owner, string memory name,
        bytes32 descriptionHash, uint8 dataType, string memory license, uint8 accessPolicy, uint256 contributionFee,
        uint64 dailyByteLimit, uint256 contributionCount, uint256 acceptedCount, uint256 versionCount);
    function getContribution(uint256 datanetId, bytes32 contentHash) external view
        returns (address contributor, uint64 size, uint8 status, uint8 score, uint256 index);
    function contributionAt(uint256 datanetId, uint256 index) external view returns (bytes32);
    function acceptedAt(uint256 datanetId, uint256 index) external view returns (bytes32);
    function getVersion(uint256 datanetId, uint256 version) external view
        returns (bytes32 root, uint256 count, uint256 blockNumber);
    function isCurator(uint256 datanetId, address account) external view returns (bool);
    function isAllowed(uint256 datanetId, address account) external view returns (bool);
}
