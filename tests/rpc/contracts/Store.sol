// SPDX-License-Identifier: Apache-2.0
// Test contract for the JSON-RPC scenario: storage, an indexed event, a reason string revert,
// a custom error revert and a view function.
pragma solidity ^0.8.20;

contract Store {
    uint256 public value;
    mapping(address => uint256) public credits;

    event Stored(address indexed who, uint256 indexed value, string note);

    error TooLarge(uint256 value);

    constructor(uint256 initial) {
        value = initial;
    }

    function store(uint256 v, string calldata note) external {
        require(v != 0, "zero not allowed");
        if (v > 1e18) revert TooLarge(v);
        value = v;
        credits[msg.sender] += v;
        emit Stored(msg.sender, v, note);
    }

    function twice() external view returns (uint256) {
        return value * 2;
    }
}
