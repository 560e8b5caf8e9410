"""EIP-4844 fees in eth_feeHistory / eth_blobBaseFee (`node.rpc.eth.blob_fees`), by fork."""
import dataclasses
from typing import NamedTuple

from eth._utils.calculations import fake_exponential

import genesis
from node.rpc.eth import GAS_PER_BLOB, blob_fees

CANCUN_FRACTION, PRAGUE_FRACTION = 3338477, 5007716


class Header(NamedTuple):
    block_number: int
    excess_blob_gas: int = 0
    blob_gas_used: int = 0


def _chain(forks):
    return dataclasses.replace(genesis.devnet(), forks=forks)


def test_no_blobs_before_cancun_and_the_minimum_fee_without_excess():
    g = _chain(((0, "london"), (5, "cancun")))
    assert blob_fees(g, Header(3)) == (0, 0, 0.0)
    assert blob_fees(g, Header(4)) == (0, 1, 0.0)  # the next block is Cancun's first
    assert blob_fees(g, Header(5)) == (1, 1, 0.0)


def test_fees_follow_excess_gas_and_the_next_blocks_fork_sets_the_target():
    g = _chain(((0, "cancun"), (10, "prague")))
    excess, used = 200 * GAS_PER_BLOB, 6 * GAS_PER_BLOB  # six blobs: Cancun's maximum, Prague's target
    fee, after, ratio = blob_fees(g, Header(5, excess, used))
    assert fee == fake_exponential(1, excess, CANCUN_FRACTION) > 1
    assert after == fake_exponential(1, excess + used - 3 * GAS_PER_BLOB, CANCUN_FRACTION) > fee
    assert ratio == 1.0
    # block 9 is Cancun's last: block 10 runs Prague, whose target (6 blobs) absorbs the six used
    fee, after, ratio = blob_fees(g, Header(9, excess, used))
    assert after == fake_exponential(1, excess, PRAGUE_FRACTION)
    fee, after, ratio = blob_fees(g, Header(12, excess, 9 * GAS_PER_BLOB))
    assert fee == fake_exponential(1, excess, PRAGUE_FRACTION) and ratio == 1.0
    assert blob_fees(g, Header(12, 0, 0)) == (1, 1, 0.0)
