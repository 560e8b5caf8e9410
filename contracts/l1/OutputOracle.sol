// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {BatchInbox} from "./BatchInbox.sol";

/// @title OutputOracle: L2 output roots signed by more than 2/3 of the validator stake (OP Stack's
/// L2OutputOracle, with a validator quorum in place of a single proposer).
/// @notice An output root is keccak256(abi.encode(0, stateRoot, withdrawalsStorageRoot, blockHash))
/// of one L2 block (OP Stack's version-0 output root). Validators sign the EIP-712 struct `Output`,
/// whose domain holds the L1 chain id and this contract's address and whose fields hold the L2
/// chain id, so a signature is good for one output of one L2 on one L1 deployment only. Every
/// output carries the validator set that signs the next one: a new set takes effect by the same
/// > 2/3 rule as the root itself. Data before settlement: a root is accepted only for an L2 block
/// the BatchInbox already holds, so nobody can withdraw against a state whose blocks were withheld
/// from the L1 (anyone can re-execute and check every root).
contract OutputOracle is EIP712 {
    struct Validator {
        address addr;
        uint256 stake;
    }

    struct Output {
        bytes32 outputRoot;
        uint64 l2BlockNumber;
        uint64 timestamp;
    }

    bytes32 public constant OUTPUT_TYPEHASH = keccak256(
        "Output(uint256 l2ChainId,uint64 l2BlockNumber,bytes32 outputRoot,bytes32 nextValidatorSetHash)"
    );

    uint256 public immutable l2ChainId;
    BatchInbox public immutable inbox;
    bytes32 public validatorSetHash;
    uint256 public totalStake;
    mapping(address => uint256) public stakeOf;
    address[] private _validators;
    Output[] private _outputs;

    event OutputProposed(uint256 indexed index, uint64 indexed l2BlockNumber, bytes32 outputRoot, uint64 timestamp);
    event ValidatorSetUpdated(bytes32 indexed validatorSetHash, uint256 totalStake, uint256 count);

    error OutputNotAfterLatest(uint64 latest, uint64 got);
    error BadSignature(uint256 index);
    error SignersNotAscending(uint256 index);
    error NotAValidator(address signer);
    error InsufficientStake(uint256 signed, uint256 total);
    error BadValidatorSet(string reason);
    error NoSuchOutput(uint256 index);
    error OutputDataNotPosted(uint64 l2BlockNumber, uint64 postedUpTo);

    constructor(uint256 l2ChainId_, Validator[] memory initial, BatchInbox inbox_)
        EIP712("OpenLedger OutputOracle", "1")
    {
        l2ChainId = l2ChainId_;
        inbox = inbox_;
        _setValidators(initial);
    }

    function hashValidatorSet(Validator[] memory set) public pure returns (bytes32) {
        return keccak256(abi.encode(set));
    }

    /// @notice The EIP-712 digest validators sign for an output.
    function outputDigest(uint64 l2BlockNumber, bytes32 outputRoot, bytes32 nextValidatorSetHash)
        public view returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(OUTPUT_TYPEHASH, l2ChainId, l2BlockNumber, outputRoot, nextValidatorSetHash))
        );
    }

    /// @param signatures 65-byte secp256k1 signatures of `outputDigest`, by signer address ascending
    function proposeOutput(
        uint64 l2BlockNumber,
        bytes32 outputRoot,
        Validator[] calldata nextSet,
        bytes[] calldata signatures
    ) external {
        uint256 count = _outputs.length;
        if (count > 0 && l2BlockNumber <= _outputs[count - 1].l2BlockNumber) {
            revert OutputNotAfterLatest(_outputs[count - 1].l2BlockNumber, l2BlockNumber);
        }
        uint64 postedUpTo = inbox.nextBlock() - 1;
        if (l2BlockNumber > postedUpTo) revert OutputDataNotPosted(l2BlockNumber, postedUpTo);
        bytes32 nextHash = hashValidatorSet(nextSet);
        bytes32 digest = outputDigest(l2BlockNumber, outputRoot, nextHash);
        uint256 signed;
        address last;
        for (uint256 i = 0; i < signatures.length; i++) {
            (address signer, ECDSA.RecoverError err,) = ECDSA.tryRecover(digest, signatures[i]);
            if (err != ECDSA.RecoverError.NoError) revert BadSignature(i);
            if (signer <= last) revert SignersNotAscending(i);
            last = signer;
            uint256 stake = stakeOf[signer];
            if (stake == 0) revert NotAValidator(signer);
            signed += stake;
        }
        if (signed * 3 <= totalStake * 2) revert InsufficientStake(signed, totalStake);
        _outputs.push(Output(outputRoot, l2BlockNumber, uint64(block.timestamp)));
        emit OutputProposed(count, l2BlockNumber, outputRoot, uint64(block.timestamp));
        if (nextHash != validatorSetHash) _setValidators(nextSet);
    }

    function outputCount() external view returns (uint256) {
        return _outputs.length;
    }

    function getOutput(uint256 index) external view returns (Output memory) {
        if (index >= _outputs.length) revert NoSuchOutput(index);
        return _outputs[index];
    }

    /// @notice The L2 block of the latest output (0 before the first).
    function latestBlockNumber() external view returns (uint64) {
        return _outputs.length == 0 ? 0 : _outputs[_outputs.length - 1].l2BlockNumber;
    }

    function validators() external view returns (Validator[] memory set) {
        set = new Validator[](_validators.length);
        for (uint256 i = 0; i < set.length; i++) set[i] = Validator(_validators[i], stakeOf[_validators[i]]);
    }

    function _setValidators(Validator[] memory set) private {
        if (set.length == 0) revert BadValidatorSet("empty");
        for (uint256 i = 0; i < _validators.length; i++) delete stakeOf[_validators[i]];
        delete _validators;
        uint256 total;
        for (uint256 i = 0; i < set.length; i++) {
            if (set[i].addr == address(0) || set[i].stake == 0) revert BadValidatorSet("zero address or stake");
            if (stakeOf[set[i].addr] != 0) revert BadValidatorSet("duplicate validator");
            stakeOf[set[i].addr] = set[i].stake;
            _validators.push(set[i].addr);
            total += set[i].stake;
        }
        totalStake = total;
        validatorSetHash = hashValidatorSet(set);
        emit ValidatorSetUpdated(validatorSetHash, total, set.length);
    }
}
