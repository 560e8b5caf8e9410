// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// Staking native module: the validator set consensus reads. ABI: vm/abi/Staking.json.
interface IStaking {
    event ValidatorRegistered(address indexed validator, uint256 stake, uint32 commissionPpm, uint8 capabilities);
    event Delegated(address indexed delegator, address indexed validator, uint256 amount);
    event Undelegated(address indexed delegator, address indexed validator, uint256 amount, uint256 releaseTime);
    event Withdrawn(address indexed account, uint256 amount);
    event Slashed(address indexed validator, uint256 amount, bytes32 reason);
    event RewardsClaimed(address indexed delegator, address indexed validator, uint256 amount);
    event Jailed(address indexed validator, uint256 height, bytes32 evidenceHash);

    function registerValidator(uint32 commissionPpm, uint8 capabilities) external payable;
    function delegate(address validator) external payable;
    function undelegate(address validator, uint256 amount) external;
    function withdraw() external returns (uint256 amount);
    function claimRewards(address validator) external returns (uint256 amount);
    /// Slash and jail a validator that signed two different votes for one (height, round, type):
    /// `evidence` is the RLP of consensus.evidence.DuplicateVoteEvidence (docs/consensus.md).
    function submitEvidence(bytes calldata evidence) external;

    function validatorCount() external view returns (uint256);
    function validatorAt(uint256 index) external view returns (address);
    function getValidator(address validator) external view returns (uint256 selfStake, uint256 delegatedStake,
        uint32 commissionPpm, uint8 capabilities, bool active, uint256 slashed);
    function delegation(address delegator, address validator) external view returns (uint256);
    function unbonding(address account) external view returns (uint256 amount, uint256 releaseTime);
    function totalStake() external view returns (uint256);
    function pendingRewards(address delegator, address validator) external view returns (uint256);
    /// The validators that sign `height` and their voting power, in consensus order.
    function consensusSet(uint256 height) external view returns (address[] memory validators,
        uint256[] memory powers);
    function jailedAt(address validator) external view returns (uint256);
    function evidenceBlock(bytes32 evidenceHash) external view returns (uint256);
}
