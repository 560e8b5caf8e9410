// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title OpenTimelock: OpenZeppelin's TimelockController unchanged, named for the build.
/// @notice The only caller allowed to change chain parameters (the Params module) and to spend
/// the ecosystem treasury; it executes what the OpenGovernor passes, after `minDelay` seconds.
contract OpenTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors, address admin)
        TimelockController(minDelay, proposers, executors, admin)
    {}
}
