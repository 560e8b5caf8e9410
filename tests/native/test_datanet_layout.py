"""The packed Datanets storage (vm/modules/datanets.py, docs/native-modules.md "Datanets storage"):
every packed field round trips at its extremes without touching its neighbours, and the gas of a
contribution still pays for each slot it writes."""
from eth_utils import to_canonical_address

from tests.native.conftest import H
from vm.modules import datanets
from vm.modules.abi import CALL_BASE_GAS
from vm.modules.storage import COLD_SLOAD_GAS, SSTORE_RESET_GAS, SSTORE_SET_GAS, slot_of, unpack
from vm.modules.system import DATANETS

MAX_U64 = 2**64 - 1


def _create(nc, fee=0, limit=MAX_U64, policy=0, curators=(), key=0):
    r = nc.send(nc.keys[key], "Datanets", "createDatanet", "d", H(9), 2, "MIT", policy, fee, limit, list(curators))
    assert r.ok, r.reason
    return nc.call("Datanets", "datanetCount")


def _member_word(nc, datanet_id, account) -> list[int]:
    slot = slot_of(datanets.MEMBERS, datanet_id, to_canonical_address(account))
    return unpack(nc.state.get_storage(DATANETS, slot), datanets.MEMBER_WIDTHS)


def test_contribution_record_round_trips_at_its_extremes(nc):
    a = nc.addresses
    d = _create(nc, limit=datanets.MAX_SIZE, curators=[a[1]])
    assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(7), datanets.MAX_SIZE).ok
    assert nc.send(nc.keys[1], "Datanets", "curate", d, H(7), True, 100).ok
    assert nc.call("Datanets", "getContribution", d, H(7)) == (a[2].lower(), 2**48 - 1, 2, 100, 0)
    record = nc.state.get_storage(DATANETS, slot_of(datanets.CONTRIBUTIONS, d, H(7)))
    assert record == (int(a[2], 16) | (2**48 - 1) << 160 | 2 << 208 | 100 << 216)  # one slot, fields in place
    assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(8), 1).reason.startswith("daily byte limit")
    assert nc.send(nc.keys[3], "Datanets", "contribute", d, H(8), 1).ok
    assert nc.send(nc.keys[1], "Datanets", "curate", d, H(8), False, 0).ok
    assert nc.call("Datanets", "getContribution", d, H(8)) == (a[3].lower(), 1, 3, 0, 1)


def test_daily_counter_sums_to_the_uint64_limit_and_resets_the_next_day(nc):
    d = _create(nc, limit=MAX_U64)
    a = nc.addresses
    for i in range(3):  # three maximal contributions: 3 * (2**48 - 1) bytes counted in 64 bits
        assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(100 + i), datanets.MAX_SIZE).ok
    used, day, allowed, curator = _member_word(nc, d, a[2])
    assert used == 3 * datanets.MAX_SIZE and day == nc.now // 86400 and (allowed, curator) == (0, 0)
    d2 = _create(nc, limit=1000)
    assert nc.send(nc.keys[2], "Datanets", "contribute", d2, H(1), 600).ok
    assert nc.send(nc.keys[2], "Datanets", "contribute", d2, H(2), 401).reason == \
        "daily byte limit 1000 exceeded (1001 bytes today)"
    assert nc.send(nc.keys[2], "Datanets", "contribute", d2, H(2), 400).ok  # exactly the limit
    nc.now += 86400
    assert nc.send(nc.keys[2], "Datanets", "contribute", d2, H(3), 1000).ok  # a new day starts at zero
    assert _member_word(nc, d2, a[2])[:2] == [1000, nc.now // 86400]


def test_member_flags_survive_usage_updates(nc):
    a = nc.addresses
    d = _create(nc, policy=1, limit=10_000, curators=[a[2]])
    assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(1), 10).reason == "sender is not on the datanet allowlist"
    assert nc.send(nc.keys[0], "Datanets", "setAllowed", d, a[2], True).ok
    assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(1), 10).ok
    assert _member_word(nc, d, a[2])[0] == 10
    assert nc.call("Datanets", "isCurator", d, a[2]) is True and nc.call("Datanets", "isAllowed", d, a[2]) is True
    assert nc.send(nc.keys[0], "Datanets", "setAllowed", d, a[2], False).ok
    assert _member_word(nc, d, a[2])[0] == 10  # the day's usage is kept
    assert nc.call("Datanets", "isAllowed", d, a[2]) is False and nc.call("Datanets", "isCurator", d, a[2]) is True
    assert nc.send(nc.keys[2], "Datanets", "curate", d, H(1), True, 50).ok  # still a curator


def test_fee_and_counters_share_the_intake_word(nc):
    a = nc.addresses
    d_max = _create(nc, fee=datanets.MAX_FEE)
    assert nc.call("Datanets", "getDatanet", d_max)[6] == 2**192 - 1
    r = nc.send(nc.keys[0], "Datanets", "createDatanet", "d", H(9), 0, "MIT", 0, 2**192, 1, [])
    assert r.reason == "contributionFee must be below 2**192 wei"
    d = _create(nc, fee=3, key=0)
    owner_before = nc.balance(a[0])
    for i in range(3):
        assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(i + 1), 5, value=3).ok
    assert nc.balance(a[0]) - owner_before == 9  # each contribution paid the owner its fee
    assert nc.send(nc.keys[2], "Datanets", "contribute", d, H(9), 5, value=2).reason == \
        "contribution fee is 3 wei, got 2"
    assert nc.send(nc.keys[0], "Datanets", "curate", d, H(2), True, 1).ok
    info = nc.call("Datanets", "getDatanet", d)
    assert info[6] == 3 and info[8:] == (3, 1, 0)  # fee, contributions, accepted, versions
    assert nc.call("Datanets", "acceptedAt", d, 0) == H(2) and nc.call("Datanets", "contributionAt", d, 2) == H(3)
    fee, count, accepted = unpack(nc.state.get_storage(DATANETS, datanets.datanet_slot(d) + datanets.INTAKE),
                                  datanets.INTAKE_WIDTHS)
    assert (fee, count, accepted) == (3, 3, 1)


def test_contribute_gas_pays_for_every_slot_it_writes(nc):
    d = _create(nc, limit=10**9)
    first = nc.send(nc.keys[2], "Datanets", "contribute", d, H(1), 10)
    later = nc.send(nc.keys[2], "Datanets", "contribute", d, H(2), 10)
    assert first.ok and later.ok
    # the first contribution creates the intake word (fee 0, counters 0) and the sender's member
    # word; later ones update both
    assert first.gas_used - later.gas_used == 2 * (SSTORE_SET_GAS - SSTORE_RESET_GAS)
    # at least: intrinsic, dispatch, two new slots (record, list entry) and two cold updates
    floor = 21_000 + CALL_BASE_GAS + 2 * (COLD_SLOAD_GAS + SSTORE_SET_GAS) + 2 * (COLD_SLOAD_GAS + SSTORE_RESET_GAS)
    assert later.gas_used > floor
