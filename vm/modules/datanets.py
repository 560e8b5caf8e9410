"""Datanets: community datasets on chain. Contributions are content hashes owned by their sender,
curated by the owner or curators, and published as immutable versions (Merkle roots).

Storage (slots in the Datanets account, Solidity mapping layout; docs/native-modules.md has the
table and the gas each call spends on it):
  0  datanetCount
  1  datanets[id] -> struct at s: s+0 owner | dataType << 160 | accessPolicy << 168 |
     dailyByteLimit << 176 (never zero: it is also the existence check); s+1 descriptionHash;
     s+2 intake word: contributionFee (192 bits) | contributionCount << 192 (32) |
     acceptedCount << 224 (32); s+3 name; s+4 license; s+5 versionCount
  2  contributions[id][hash] -> contributor | size << 160 (48 bits) | status << 208 |
     score << 216 | index << 224 (32 bits)
  3  contributionList[id][index] -> hash          4  acceptedList[id][index] -> hash
  5  versions[id][version] -> v: v+0 root; v+1 count | blockNumber << 128
  6  members[id][address] -> bytesUsedToday (64) | day << 64 (48) | allowed << 112 (8) |
     curator << 120 (8)

A contribute touches four slots (head, intake word, its new record, its new list entry) plus the
sender's member word: what it reads it needs, and each slot is read once (warm afterwards).

A version's root is `vm.merkle.merkle_root` over the accepted content hashes in acceptance
order (acceptedAt(0), acceptedAt(1), ...), covering every contribution accepted so far.
"""
from eth_utils import to_canonical_address

from vm.merkle import merkle_root
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import pack, require, slot_of, unpack
from vm.modules.system import DATANETS

COUNT, DATANETS_SLOT, CONTRIBUTIONS, CONTRIBUTION_LIST, ACCEPTED_LIST, VERSIONS, MEMBERS = range(7)
HEAD, DESCRIPTION, INTAKE, NAME, LICENSE, VERSION_COUNT = range(6)  # offsets in a Datanet's struct
DATA_TYPES = ("text", "image", "audio")
ACCESS_POLICIES = ("public", "allowlist")
PENDING, ACCEPTED, REJECTED = 1, 2, 3
MAX_NAME_BYTES = 64
MAX_LICENSE_BYTES = 64
MAX_CURATORS = 16
MAX_SIZE = 2**48 - 1
MAX_INDEX = 2**32 - 1
MAX_FEE = 2**192 - 1  # far above the whole OPEN supply (1e27 wei < 2**90)
DAY_S = 86400
HEAD_WIDTHS = (160, 8, 8, 64)
INTAKE_WIDTHS = (192, 32, 32)
RECORD_WIDTHS = (160, 48, 8, 8, 32)
MEMBER_WIDTHS = (64, 48, 8, 8)


def datanet_slot(datanet_id: int) -> int:
    return slot_of(DATANETS_SLOT, datanet_id)


def existing(store, datanet_id: int) -> tuple[int, list[int]]:
    """(base slot, unpacked head) of Datanet `datanet_id`; reverts when it does not exist."""
    s = datanet_slot(datanet_id)
    head = store.read(s + HEAD)
    require(head != 0, f"unknown datanet {datanet_id}")
    return s, unpack(head, HEAD_WIDTHS)


def contribution_record(store, datanet_id: int, content_hash: bytes) -> list[int]:
    """[contributor, size, status, score, index] (status 0: none)."""
    return unpack(store.read(slot_of(CONTRIBUTIONS, datanet_id, content_hash)), RECORD_WIDTHS)


def _member(store, datanet_id: int, account: bytes) -> tuple[int, list[int]]:
    """(slot, [bytesUsed, day, allowed, curator]) of `account` in Datanet `datanet_id`."""
    slot = slot_of(MEMBERS, datanet_id, account)
    return slot, unpack(store.read(slot), MEMBER_WIDTHS)


def version_root(store, datanet_id: int, version: int) -> bytes:
    """Root of a published version; reverts when the Datanet or version is unknown."""
    s, _ = existing(store, datanet_id)
    require(0 < version <= store.read(s + VERSION_COUNT), f"unknown version {version} of datanet {datanet_id}")
    return store.read(slot_of(VERSIONS, datanet_id, version)).to_bytes(32, "big")


def _text(value: str, field: str, limit: int) -> bytes:
    raw = value.encode()
    require(0 < len(raw) <= limit, f"{field} must be 1..{limit} bytes")
    return raw


def create_datanet(call: Call, name, description_hash, data_type, license_, access_policy, fee, daily_limit,
                   curators):
    name_b, license_b = _text(name, "name", MAX_NAME_BYTES), _text(license_, "license", MAX_LICENSE_BYTES)
    require(data_type < len(DATA_TYPES), f"dataType {data_type} unknown (0 text, 1 image, 2 audio)")
    require(access_policy < len(ACCESS_POLICIES), f"accessPolicy {access_policy} unknown (0 public, 1 allowlist)")
    require(fee <= MAX_FEE, "contributionFee must be below 2**192 wei")
    require(daily_limit > 0, "dailyByteLimit must be positive")
    require(len(curators) <= MAX_CURATORS, f"at most {MAX_CURATORS} curators")
    require(len(set(curators)) == len(curators), "duplicate curator")
    require(all(int(c, 16) != 0 for c in curators), "curator is the zero address")
    st = call.store
    datanet_id = st.add(COUNT, 1)
    s = datanet_slot(datanet_id)
    st.write(s + HEAD, pack([(int.from_bytes(call.sender, "big"), 160), (data_type, 8), (access_policy, 8),
                             (daily_limit, 64)]))
    st.write(s + DESCRIPTION, int.from_bytes(description_hash, "big"))
    st.write(s + INTAKE, fee)  # both counters start at zero
    st.write_bytes(s + NAME, name_b)
    st.write_bytes(s + LICENSE, license_b)
    for c in curators:
        st.write(slot_of(MEMBERS, datanet_id, to_canonical_address(c)), pack([(0, 64), (0, 48), (0, 8), (1, 8)]))
    call.emit("DatanetCreated", datanetId=datanet_id, owner=call.sender, name=name, dataType=data_type,
              accessPolicy=access_policy)
    return datanet_id


def set_allowed(call: Call, datanet_id, account, allowed):
    st = call.store
    _, (owner, _, _, _) = existing(st, datanet_id)
    require(owner.to_bytes(20, "big") == call.sender, "only the datanet owner may change the allowlist")
    slot, (used, day, _, curator) = _member(st, datanet_id, to_canonical_address(account))
    st.write(slot, pack([(used, 64), (day, 48), (int(allowed), 8), (curator, 8)]))
    call.emit("AllowlistUpdated", datanetId=datanet_id, account=account, allowed=allowed)


def contribute(call: Call, datanet_id, content_hash, size):
    st = call.store
    s, (owner, _, policy, daily_limit) = existing(st, datanet_id)
    require(content_hash != bytes(32), "contentHash is zero")
    require(0 < size <= MAX_SIZE, f"size must be 1..{MAX_SIZE} bytes")
    fee, index, accepted = unpack(st.read(s + INTAKE), INTAKE_WIDTHS)
    require(call.value == fee, f"contribution fee is {fee} wei, got {call.value}")
    member_slot, (used, day, allowed, curator) = _member(st, datanet_id, call.sender)
    if policy == 1:
        require(allowed == 1, "sender is not on the datanet allowlist")
    record_slot = slot_of(CONTRIBUTIONS, datanet_id, content_hash)
    require(st.read(record_slot) == 0, "duplicate contribution: contentHash already in this datanet")
    today = call.timestamp // DAY_S
    used = used + size if day == today else size
    require(used <= daily_limit, f"daily byte limit {daily_limit} exceeded ({used} bytes today)")
    require(index < MAX_INDEX, "datanet is full")
    st.write(record_slot, pack([(int.from_bytes(call.sender, "big"), 160), (size, 48), (PENDING, 8), (0, 8), (index, 32)]))
    st.write(slot_of(CONTRIBUTION_LIST, datanet_id, index), int.from_bytes(content_hash, "big"))
    st.write(s + INTAKE, pack([(fee, 192), (index + 1, 32), (accepted, 32)]))
    st.write(member_slot, pack([(used, 64), (today, 48), (allowed, 8), (curator, 8)]))
    st.pay(owner.to_bytes(20, "big"), fee)
    call.emit("Contributed", datanetId=datanet_id, contentHash=content_hash, contributor=call.sender, size=size,
              index=index)
    return index


def _require_curator(st, datanet_id: int, owner: int, sender: bytes, action: str) -> None:
    """The owner, or a curator (whose member word is then read), may `action`."""
    require(owner.to_bytes(20, "big") == sender or _member(st, datanet_id, sender)[1][3] == 1,
            f"only the datanet owner or a curator may {action}")


def curate(call: Call, datanet_id, content_hash, accept, score):
    st = call.store
    s, (owner, _, _, _) = existing(st, datanet_id)
    require(score <= 100, f"score {score} out of range 0..100")
    _require_curator(st, datanet_id, owner, call.sender, "curate")
    record_slot = slot_of(CONTRIBUTIONS, datanet_id, content_hash)
    contributor, size, status, _, index = unpack(st.read(record_slot), RECORD_WIDTHS)
    require(status != 0, "unknown contribution")
    require(status == PENDING, "contribution already curated")
    new_status = ACCEPTED if accept else REJECTED
    st.write(record_slot, pack([(contributor, 160), (size, 48), (new_status, 8), (score, 8), (index, 32)]))
    if accept:
        fee, count, accepted = unpack(st.read(s + INTAKE), INTAKE_WIDTHS)
        st.write(slot_of(ACCEPTED_LIST, datanet_id, accepted), int.from_bytes(content_hash, "big"))
        st.write(s + INTAKE, pack([(fee, 192), (count, 32), (accepted + 1, 32)]))
    call.emit("Curated", datanetId=datanet_id, contentHash=content_hash, curator=call.sender, accepted=accept,
              score=score)


def accepted_hashes(st, datanet_id: int, count: int) -> list[bytes]:
    return [st.read(slot_of(ACCEPTED_LIST, datanet_id, i)).to_bytes(32, "big") for i in range(count)]


def publish_version(call: Call, datanet_id):
    st = call.store
    s, (owner, _, _, _) = existing(st, datanet_id)
    _require_curator(st, datanet_id, owner, call.sender, "publish")
    accepted = unpack(st.read(s + INTAKE), INTAKE_WIDTHS)[2]
    versions = st.read(s + VERSION_COUNT)
    last_count = 0
    if versions:
        last_count = st.read(slot_of(VERSIONS, datanet_id, versions) + 1) & ((1 << 128) - 1)
    require(accepted > last_count, "nothing new to publish: no contribution accepted since the last version")
    root = merkle_root(accepted_hashes(st, datanet_id, accepted))
    version = versions + 1
    v = slot_of(VERSIONS, datanet_id, version)
    st.write(v, int.from_bytes(root, "big"))
    st.write(v + 1, accepted | call.block_number << 128)
    st.write(s + VERSION_COUNT, version)
    call.emit("VersionPublished", datanetId=datanet_id, version=version, root=root, count=accepted)
    return version, root


def datanet_count(call: Call):
    return call.store.read(COUNT)


def get_datanet(call: Call, datanet_id):
    st = call.store
    s, (owner, data_type, policy, daily_limit) = existing(st, datanet_id)
    fee, count, accepted = unpack(st.read(s + INTAKE), INTAKE_WIDTHS)
    return (owner.to_bytes(20, "big"), st.read_bytes(s + NAME).decode(), st.read(s + DESCRIPTION).to_bytes(32, "big"),
            data_type, st.read_bytes(s + LICENSE).decode(), policy, fee, daily_limit, count, accepted,
            st.read(s + VERSION_COUNT))


def get_contribution(call: Call, datanet_id, content_hash):
    existing(call.store, datanet_id)
    contributor, size, status, score, index = contribution_record(call.store, datanet_id, content_hash)
    require(status != 0, "unknown contribution")
    return contributor.to_bytes(20, "big"), size, status, score, index


def _list_at(slot: int, what: str):
    def read(call: Call, datanet_id, index):
        s, _ = existing(call.store, datanet_id)
        _, count, accepted = unpack(call.store.read(s + INTAKE), INTAKE_WIDTHS)
        require(index < (count if slot == CONTRIBUTION_LIST else accepted), f"{what} index {index} out of range")
        return call.store.read(slot_of(slot, datanet_id, index)).to_bytes(32, "big")
    return read


def get_version(call: Call, datanet_id, version):
    root = version_root(call.store, datanet_id, version)
    packed = call.store.read(slot_of(VERSIONS, datanet_id, version) + 1)
    return root, packed & ((1 << 128) - 1), packed >> 128


def _flag(field: int):
    def read(call: Call, datanet_id, account):
        existing(call.store, datanet_id)
        return _member(call.store, datanet_id, to_canonical_address(account))[1][field] == 1
    return read


MODULE = NativeModule("Datanets", DATANETS, {
    "createDatanet": create_datanet,
    "setAllowed": set_allowed,
    "contribute": contribute,
    "curate": curate,
    "publishVersion": publish_version,
    "datanetCount": datanet_count,
    "getDatanet": get_datanet,
    "getContribution": get_contribution,
    "contributionAt": _list_at(CONTRIBUTION_LIST, "contribution"),
    "acceptedAt": _list_at(ACCEPTED_LIST, "accepted"),
    "getVersion": get_version,
    "isCurator": _flag(3),
    "isAllowed": _flag(2),
})
