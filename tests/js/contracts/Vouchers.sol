// SPDX-License-Identifier: Apache-2.0
// EIP-712 test contract for the dapp-client suite: an issuer signs vouchers off chain (viem's
// signTypedData, ethers' signTypedData) and the contract recovers the signer on chain.
pragma solidity ^0.8.20;

contract Vouchers {
    bytes32 public constant VOUCHER_TYPEHASH = keccak256("Voucher(address to,uint256 amount,uint256 nonce)");
    bytes32 public immutable DOMAIN_SEPARATOR;
    address public immutable issuer;
    mapping(uint256 => bool) public used;

    event Redeemed(address indexed to, uint256 amount, uint256 nonce);

    error BadSignature(address recovered);

    constructor(address issuer_) {
        issuer = issuer_;
        DOMAIN_SEPARATOR = keccak256(abi.encode(
            keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"),
            keccak256("Vouchers"), keccak256("1"), block.chainid, address(this)));
    }

    function signer(address to, uint256 amount, uint256 nonce, uint8 v, bytes32 r, bytes32 s)
        public view returns (address)
    {
        bytes32 digest = keccak256(abi.encodePacked(
            hex"1901", DOMAIN_SEPARATOR, keccak256(abi.encode(VOUCHER_TYPEHASH, to, amount, nonce))));
        return ecrecover(digest, v, r, s);
    }

    function redeem(address to, uint256 amount, uint256 nonce, uint8 v, bytes32 r, bytes32 s) external {
        address recovered = signer(to, amount, nonce, v, r, s);
        if (recovered != issuer) revert BadSignature(recovered);
        require(!used[nonce], "voucher used");
        used[nonce] = true;
        emit Redeemed(to, amount, nonce);
    }
}
