// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// What explorers trace: value calls, static and delegate calls, CREATE and CREATE2, logs,
/// storage, reverts with a reason (bubbled and caught) and SELFDESTRUCT.
contract Child {
    uint256 public value;
    event Stored(uint256 indexed v, address from);

    constructor() payable {}

    function store(uint256 v) external payable {
        value = v;
        emit Stored(v, msg.sender);
    }

    function peek() external view returns (uint256) {
        return value;
    }

    function fail() external pure {
        revert("child says no");
    }

    function bye(address payable to) external {
        selfdestruct(to);
    }

    receive() external payable {}
}

contract Explorer {
    Child public child;
    uint256 public counter;
    event Made(address indexed child, bool salted);

    function make() external payable returns (address) {
        child = new Child{value: msg.value}();
        emit Made(address(child), false);
        return address(child);
    }

    function make2(bytes32 salt) external returns (address) {
        Child c = new Child{salt: salt}();
        emit Made(address(c), true);
        return address(c);
    }

    function forward(uint256 v) external payable {
        child.store{value: msg.value}(v);
        counter = child.peek();
        payable(address(child)).transfer(1);
    }

    function borrow() external {
        (bool ok, ) = address(child).delegatecall(abi.encodeWithSignature("peek()"));
        require(ok, "delegatecall failed");
    }

    function tryFail() external {
        child.fail();
    }

    function catchFail() external {
        try child.fail() {} catch {
            counter += 1;
        }
    }

    function retire(address payable to) external {
        child.bye(to);
    }

    receive() external payable {}
}
