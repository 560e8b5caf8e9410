// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Permit.sol";
import {ERC20Votes} from "@openzeppelin/contracts/token/ERC20/extensions/ERC20Votes.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";

/// @title GOPEN: native OPEN wrapped 1:1 into an ERC20Votes token.
/// @notice Voting power for the OPEN Governor. Wrap with `deposit` (or a plain transfer of OPEN),
/// unwrap with `withdraw`; total supply always equals the OPEN deposited and not withdrawn.
/// Votes are checkpointed by block number (ERC-6372 default clock), so the Governor's delay and
/// period are in blocks.
contract GOPEN is ERC20, ERC20Permit, ERC20Votes {
    event Deposit(address indexed account, uint256 amount);
    event Withdrawal(address indexed account, uint256 amount);

    error GOPENInsufficientBalance(address account, uint256 balance, uint256 needed);
    error GOPENTransferFailed(address to, uint256 amount);

    constructor() ERC20("Governance OPEN", "GOPEN") ERC20Permit("Governance OPEN") {}

    receive() external payable {
        deposit();
    }

    /// @notice Wrap the OPEN sent with this call into as many GOPEN.
    function deposit() public payable {
        _mint(msg.sender, msg.value);
        emit Deposit(msg.sender, msg.value);
    }

    /// @notice Unwrap `amount` GOPEN back into OPEN sent to the caller.
    function withdraw(uint256 amount) external {
        uint256 balance = balanceOf(msg.sender);
        if (balance < amount) revert GOPENInsufficientBalance(msg.sender, balance, amount);
        _burn(msg.sender, amount);
        emit Withdrawal(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert GOPENTransferFailed(msg.sender, amount);
    }

    function _update(address from, address to, uint256 value) internal override(ERC20, ERC20Votes) {
        super._update(from, to, value);
    }

    function nonces(address owner) public view override(ERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }
}
