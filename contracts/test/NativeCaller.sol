// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// A contract that calls native modules the ways an attacker would: twice in one transaction,
/// through DELEGATECALL and STATICCALL, and as a delegator withdrawing twice. Used by
/// tests/native/test_contract_callers.py to show no OPEN can be spent twice.
contract NativeCaller {
    function callTwice(address target, bytes calldata data, uint256 valueEach)
        external payable returns (bool first, bool second)
    {
        (first, ) = target.call{value: valueEach}(data);
        (second, ) = target.call{value: valueEach}(data);
    }

    function delegate(address target, bytes calldata data) external returns (bool ok, bytes memory ret) {
        return target.delegatecall(data);
    }

    function staticRead(address target, bytes calldata data) external view returns (bool ok, bytes memory ret) {
        return target.staticcall(data);
    }

    receive() external payable {}
}
