// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// OPEN economics native module: reserve release, vesting, reward ledger, and the chain's
/// parameters, which only the governance Timelock may change (within bounds). ABI: vm/abi/Economics.json.
interface IEconomics {
    event VestingClaimed(address indexed beneficiary, uint256 amount);
    event ParamChanged(string name, uint256 oldValue, uint256 newValue);

    function claimVested() external returns (uint256 amount);

    function vestingOf(address beneficiary) external view returns (uint256 total, uint256 claimed, uint256 claimable);
    function rewardsOf(address account) external view returns (uint256);
    /// Set parameter `name` (a genesis economics name, e.g. "dispute_window_s"); Timelock only.
    function setParam(string calldata name, uint256 value) external;
    function getParam(string calldata name) external view returns (uint256);
    function supply() external view returns (uint256 reserve, uint256 locked, uint256 burned, uint256 released);
}
