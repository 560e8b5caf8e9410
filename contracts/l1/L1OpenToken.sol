// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @title OPEN on the L1: the L1 side of the fixed 1,000,000,000 OPEN supply.
/// @notice The whole supply is minted once, to `holder`; the deployment moves every token that
/// lives on the L2 into the L1Bridge, so L1 OPEN outside the bridge always equals the OPEN the
/// L2 bridge account escrows. Nothing can mint afterwards.
contract L1OpenToken is ERC20 {
    uint256 public constant TOTAL_SUPPLY = 1_000_000_000 ether;

    constructor(address holder) ERC20("OpenLedger", "OPEN") {
        _mint(holder, TOTAL_SUPPLY);
    }
}
