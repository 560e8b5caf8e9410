// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// OPEN economics native module: reserve release, vesting, reward ledger. ABI: vm/abi/Economics.json.
interface IEconomics {
    event VestingClaimed(address indexed beneficiary, uint256 amount);

    function claimVested() external returns (uint256 amount);

    function vestingOf(address beneficiary) external view returns (uint256 total, uint256 claimed, uint256 claimable);
    function rewardsOf(address account) external view returns (uint256);
    function supply() external view returns (uint256 reserve, uint256 locked, uint256 burned, uint256 released);
}
