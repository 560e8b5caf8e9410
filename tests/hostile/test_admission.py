"""Admission as strict as import (#21 case 4): one corpus of malformed transactions goes through
the pool's admission and through block import, and the two must agree. Nothing the pool accepts
may be refused by import (it would sit in the pool, its hash given out, never mined); what only
the pool refuses is listed with the reason (go-ethereum's pool policies)."""
from __future__ import annotations

import time

import pytest
import rlp
from eth.db.atomic import AtomicDB
from eth_keys import keys
from eth_utils import keccak

import genesis
import vm
from node.chain import Node
from node.mempool import TxPoolError
from tests.hostile.conftest import http, post, rpc, body
from vm.trie import ordered_trie_root

G = genesis.devnet()
CHAIN = G.chain_id
KEY = keys.PrivateKey(bytes.fromhex(genesis.dev_accounts()[1][1][2:]))
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
GWEI = 10**9
TO = b"\x11" * 20
BIG = 2**256


def _int(x: int) -> bytes:
    return x.to_bytes((x.bit_length() + 7) // 8, "big") if x else b""


def typed(kind: int, fields: list, *, key=KEY, mutate=None) -> bytes:
    """A signed typed transaction from its unsigned RLP fields; `mutate(y, r, s)` alters the signature."""
    digest = keccak(bytes([kind]) + rlp.encode(fields))
    sig = key.sign_msg_hash(digest)
    y, r, s = sig.v, sig.r, sig.s
    if mutate:
        y, r, s = mutate(y, r, s)
    return bytes([kind]) + rlp.encode(fields + [_int(y), _int(r), _int(s)])


def legacy(fields: list, chain_id: int | None = CHAIN, *, mutate=None, v_offset: int = 0) -> bytes:
    """A signed legacy transaction (EIP-155 unless chain_id is None)."""
    unsigned = fields + ([_int(chain_id), b"", b""] if chain_id is not None else [])
    sig = KEY.sign_msg_hash(keccak(rlp.encode(unsigned)))
    y, r, s = sig.v, sig.r, sig.s
    if mutate:
        y, r, s = mutate(y, r, s)
    v = (35 + 2 * chain_id + y if chain_id is not None else 27 + y) + v_offset
    return rlp.encode(fields + [_int(v), _int(r), _int(s)])


def t2(nonce=0, tip=GWEI, fee=3 * GWEI, gas=21_000, to=TO, value=1, data=b"", access=(), chain=CHAIN):
    return [_int(chain), _int(nonce), _int(tip), _int(fee), _int(gas), to, _int(value), data, list(access)]


def t1(nonce=0, price=3 * GWEI, gas=21_000, to=TO, value=1, data=b"", access=(), chain=CHAIN):
    return [_int(chain), _int(nonce), _int(price), _int(gas), to, _int(value), data, list(access)]


def t0(nonce=0, price=3 * GWEI, gas=21_000, to=TO, value=1, data=b""):
    return [_int(nonce), _int(price), _int(gas), to, _int(value), data]


def auth(chain=CHAIN, address=b"\x22" * 20, nonce=0, key=None, mutate=None) -> list:
    key = key or keys.PrivateKey(b"\x07" * 32)
    sig = key.sign_msg_hash(keccak(b"\x05" + rlp.encode([_int(chain), address, _int(nonce)])))
    y, r, s = sig.v, sig.r, sig.s
    if mutate:
        y, r, s = mutate(y, r, s)
    return [_int(chain), address, _int(nonce), _int(y), _int(r), _int(s)]


def t4(auths, to=TO, gas=100_000):
    return t2(gas=gas, to=to) + [auths]


def high_s(y, r, s):
    return 1 - y, r, N - s


ACCESS = [[b"\x33" * 20, [b"\x00" * 32]]]

# name -> (raw transaction, None if pool and import must agree, else why only the pool refuses it)
CORPUS: dict[str, tuple[bytes, str | None]] = {
    # valid: both accept
    "type2": (typed(2, t2()), None),
    "type1 with access list": (typed(1, t1(gas=30_000, access=ACCESS)), None),
    "legacy EIP-155": (legacy(t0()), None),
    "type2 creation": (typed(2, t2(to=b"", gas=100_000, value=0, data=b"\x60\x00")), None),
    "type4": (typed(4, t4([auth()])), None),
    "type4, high-s authorization (skipped when run)": (typed(4, t4([auth(mutate=high_s)])), None),
    "type4, authorization for chain 1 (skipped when run)": (typed(4, t4([auth(chain=1)])), None),
    # signature values
    "type2 high s": (typed(2, t2(), mutate=high_s), None),
    "type1 high s": (typed(1, t1(), mutate=high_s), None),
    "legacy high s": (legacy(t0(), mutate=high_s), None),
    "type4 high s": (typed(4, t4([auth()]), mutate=high_s), None),
    "type2 s = 0": (typed(2, t2(), mutate=lambda y, r, s: (y, r, 0)), None),
    "type2 r = 0": (typed(2, t2(), mutate=lambda y, r, s: (y, 0, s)), None),
    "type2 s = n": (typed(2, t2(), mutate=lambda y, r, s: (y, r, N)), None),
    "type2 r = n": (typed(2, t2(), mutate=lambda y, r, s: (y, N, s)), None),
    "type2 y parity 2": (typed(2, t2(), mutate=lambda y, r, s: (2, r, s)), None),
    "legacy v off by 2": (legacy(t0(), v_offset=2), None),
    # chain id
    "type2 chain 1": (typed(2, t2(chain=1)), None),
    "type2 chain 0": (typed(2, t2(chain=0)), None),
    "legacy without chain id": (legacy(t0(), chain_id=None), None),
    "legacy for chain 1": (legacy(t0(), chain_id=1), None),
    # gas and fees
    "intrinsic gas too low": (typed(2, t2(gas=20_999)), None),
    "access list intrinsic gas": (typed(1, t1(gas=21_000, access=ACCESS)), None),
    "creation intrinsic gas": (typed(2, t2(to=b"", gas=52_999, value=0)), None),
    "calldata intrinsic gas": (typed(2, t2(gas=21_000 + 16 * 99, data=b"\x01" * 100)), None),
    "type4 intrinsic gas": (typed(4, t4([auth()], gas=21_000)), None),
    "fee cap below base fee": (typed(2, t2(fee=1, tip=1)), None),
    "gas over the block gas limit": (typed(2, t2(gas=G.gas_limit + 1)), None),
    "gas past 64 bits": (typed(2, t2(gas=2**64)), None),
    "value past 256 bits": (typed(2, t2(value=BIG)), None),
    "fee cap past 256 bits": (typed(2, t2(fee=BIG, tip=1)), None),
    "nonce past 64 bits": (typed(2, t2(nonce=2**64)), None),
    # EIP-7702 fields
    "type4 empty authorization list": (typed(4, t4([])), None),
    "type4 creation": (typed(4, t4([auth()], to=b"")), None),
    "type4 authorization y parity 256": (typed(4, t4([auth(mutate=lambda y, r, s: (256, r, s))])), None),
    "type4 authorization nonce past 64 bits": (typed(4, t4([auth(nonce=2**64)])), None),
    "type4 authorization missing a field": (typed(4, t4([auth()[:5]])), None),
    # encodings
    "truncated": (typed(2, t2())[:-5], None),
    "trailing bytes": (typed(2, t2()) + b"\x00", None),
    "unknown type 5": (b"\x05" + typed(2, t2())[1:], None),
    "to of 19 bytes": (typed(2, t2(to=b"\x11" * 19)), None),
    "integer with a leading zero": (typed(2, [_int(CHAIN), b"\x00", _int(GWEI), _int(3 * GWEI), _int(21_000), TO,
                                              b"\x01", b"", []]), None),
    "a list where a field is": (typed(2, t2()[:5] + [[TO]] + t2()[6:]), None),
    "empty": (b"", None),
    "rlp list of nothing": (b"\xc0", None),
    "initcode over 49,152 bytes": (typed(2, t2(to=b"", gas=1_000_000, value=0, data=b"\x00" * 49_153)), None),
    "initcode of 49,152 bytes": (typed(2, t2(to=b"", gas=1_000_000, value=0, data=b"\x00" * 49_152)), None),
    # refused by geth's consensus, taken by py-evm's import, so admitted too (see docs/rpc.md)
    "gas below the EIP-7623 calldata floor": (typed(2, t2(gas=40_000, data=b"\x01" * 1000)), None),
    # the pool's own policies (go-ethereum's): refused at admission, valid in a block
    "tip above fee cap": (typed(2, t2(tip=4 * GWEI, fee=3 * GWEI)),
                          "geth refuses it (a consensus rule there); py-evm's import does not check it"),
    "over 128 KiB": (typed(2, t2(gas=3_000_000, data=b"\x01" * (128 * 1024))), "geth's txMaxSize"),
    "type3 blob transaction": (typed(3, t2(gas=21_000) + [_int(10**9), [b"\x01" + b"\x00" * 31]]),
                               "no blob sidecars in this pool"),
}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    node = Node.init(tmp_path_factory.mktemp("admission") / "data", G)
    yield node.mempool
    node.close()  # also drops py-evm's class-wide caches that hold the in-memory chains below


def pool_verdict(pool, raw: bytes) -> str | None:
    """None if admitted (then taken out again, so each item meets the same state), else why not."""
    try:
        tx_hash = pool.add_raw(raw)  # a node without a journal open: nothing is tracked
    except TxPoolError as e:
        return e.message
    pool.remove(tx_hash)
    return None


def _chain():
    return vm.build_chain_class(G).from_genesis(AtomicDB(), vm.genesis_params(G), vm.genesis_state(G))


def _through_transactions(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in ("apply_all_transactions", "apply_transaction"):
            return True
        tb = tb.tb_next
    return False


_IMPORT_VERDICTS: dict[bytes, str | None] = {}


def import_verdict(raw: bytes) -> str | None:
    if raw not in _IMPORT_VERDICTS:
        _IMPORT_VERDICTS[raw] = _import_verdict(raw)
    return _IMPORT_VERDICTS[raw]


def _import_verdict(raw: bytes) -> str | None:
    """None if block import takes a block holding `raw` as block 1, else why not: the block is
    sent through the import path's own decoding (rlp with the block class, as `openledger
    import` does) and `vm.import_block`. The header of the forged block is only right for an
    empty body, so an import that gets past the transactions fails later, on the header: that
    counts as taken (the positive cases are also imported for real in the test)."""
    chain = _chain()
    empty, _ = vm.build_block(chain, [], G.timestamp + 1, G.validators[0].address)
    item = raw
    if raw[:1] and raw[0] >= 0xC0:
        try:
            item = rlp.decode(raw)  # a legacy transaction is a list inside the block
        except rlp.DecodingError as e:
            return f"decode: {e}"
    root, _ = ordered_trie_root([raw])
    block_rlp = rlp.encode([empty.header.copy(transaction_root=root), [item], [], []])
    try:
        block = rlp.decode(block_rlp, sedes=chain.get_vm_class_for_block_number(1).get_block_class())
    except Exception as e:  # noqa: BLE001 - any decoding failure is a refusal
        return f"decode: {type(e).__name__}: {e}"
    try:
        vm.import_block(_chain(), block)
    except Exception as e:  # noqa: BLE001
        if _through_transactions(e):
            return f"{type(e).__name__}: {e}"
        return None
    raise AssertionError("a forged header was imported")


def build_and_import(raw: bytes) -> None:
    """The positive proof: a block built with `raw` (by the block builder) imports into a fresh chain."""
    chain = _chain()
    tx = chain.get_vm().get_transaction_builder().decode(raw)
    refused = []
    block, _ = vm.build_block(chain, [tx], G.timestamp + 1, G.validators[0].address,
                              rejected=lambda t, e: refused.append(e))
    assert not refused and len(block.transactions) == 1, refused
    vm.import_block(_chain(), rlp.decode(rlp.encode(block), sedes=type(block)))


@pytest.mark.parametrize("name", list(CORPUS))
def test_pool_and_import_agree(pool, name):
    raw, pool_only = CORPUS[name]
    by_pool, by_import = pool_verdict(pool, raw), import_verdict(raw)
    if by_pool is None:  # never admitted and then unminable
        assert by_import is None, f"the pool admits what import refuses: {by_import}"
        build_and_import(raw)
    elif pool_only is None:
        assert by_import is not None, f"the pool refuses ({by_pool}) what import takes"
    else:
        assert by_import is None, f"listed as the pool's own policy, but import refuses it too: {by_import}"


def test_corpus_has_both_kinds(pool):
    verdicts = {name: import_verdict(raw) for name, (raw, _) in CORPUS.items()}
    assert sum(v is None for v in verdicts.values()) >= 8
    assert sum(v is not None for v in verdicts.values()) >= 30


def test_high_s_is_refused_over_rpc_with_geths_words(node):
    """#21 case 4: was accepted with a hash returned, then never mined."""
    from tests.conftest import DEV_ACCOUNTS

    sender = keys.PrivateKey(bytes.fromhex(DEV_ACCOUNTS[7][1][2:]))
    nonce = int(node.rpc("eth_getTransactionCount", sender.public_key.to_checksum_address(), "pending"), 16)
    raw = typed(2, t2(nonce=nonce), key=sender, mutate=high_s)
    _, _, answer = http(node, post(body(rpc("eth_sendRawTransaction", "0x" + raw.hex()))))
    assert b'"error":{"code":-32000,"message":"invalid sender: invalid transaction v, r, s values"}' in answer, answer
    good = typed(2, t2(nonce=nonce), key=sender)
    tx_hash = node.rpc("eth_sendRawTransaction", "0x" + good.hex())
    deadline = time.monotonic() + 30
    while node.rpc("eth_getTransactionReceipt", tx_hash) is None:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_oversized_initcode_cannot_halt_block_production(node):
    """Found by the corpus: py-evm refuses a creation with initcode over 49,152 bytes by raising
    OutOfGas out of the block builder, so once admitted it made every block fail (the chain
    stopped). Admission now refuses it with geth's words, and blocks keep coming."""
    from tests.conftest import DEV_ACCOUNTS

    sender = keys.PrivateKey(bytes.fromhex(DEV_ACCOUNTS[6][1][2:]))
    nonce = int(node.rpc("eth_getTransactionCount", sender.public_key.to_checksum_address(), "pending"), 16)
    raw = typed(2, t2(nonce=nonce, to=b"", gas=1_000_000, value=0, data=b"\x00" * 49_153), key=sender)
    _, _, answer = http(node, post(body(rpc("eth_sendRawTransaction", "0x" + raw.hex()))))
    assert b'"message":"max initcode size exceeded: code size 49153, limit 49152"' in answer, answer
    start = int(node.rpc("eth_blockNumber"), 16)
    deadline = time.monotonic() + 30
    while int(node.rpc("eth_blockNumber"), 16) < start + 2:
        assert time.monotonic() < deadline, "block production stopped"
        time.sleep(0.2)
