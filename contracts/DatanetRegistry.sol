// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// The Datanets create/contribute/curate path written as an ordinary Solidity contract, with the
/// same rules, storage records and events as the native module (vm/modules/datanets.py): the peer
/// bench/bench_native.py runs on anvil to compare gas and contributions per second.
contract DatanetRegistry {
    struct Datanet {
        address owner;          // packed with the three fields below into one slot
        uint8 dataType;
        uint8 accessPolicy;
        uint64 dailyByteLimit;
        bytes32 descriptionHash;
        uint256 contributionFee;
        string name;
        string license;
        uint256 contributionCount;
        uint256 acceptedCount;
    }

    struct Contribution {       // one slot, as the native record
        address contributor;
        uint48 size;
        uint8 status;           // 1 pending, 2 accepted, 3 rejected
        uint8 score;
        uint32 index;
    }

    struct Usage {
        uint64 day;
        uint192 bytesUsed;
    }

    uint256 public datanetCount;
    mapping(uint256 => Datanet) private datanets;
    mapping(uint256 => mapping(bytes32 => Contribution)) private contributions;
    mapping(uint256 => mapping(uint256 => bytes32)) private contributionList;
    mapping(uint256 => mapping(uint256 => bytes32)) private acceptedList;
    mapping(uint256 => mapping(address => bool)) private curators;
    mapping(uint256 => mapping(address => bool)) private allowlist;
    mapping(uint256 => mapping(address => Usage)) private usage;

    event DatanetCreated(uint256 indexed datanetId, address indexed owner, string name, uint8 dataType, uint8 accessPolicy);
    event Contributed(uint256 indexed datanetId, bytes32 indexed contentHash, address indexed contributor, uint64 size, uint256 index);
    event Curated(uint256 indexed datanetId, bytes32 indexed contentHash, address indexed curator, bool accepted, uint8 score);

    function createDatanet(string calldata name, bytes32 descriptionHash, uint8 dataType, string calldata license,
        uint8 accessPolicy, uint256 contributionFee, uint64 dailyByteLimit, address[] calldata curatorList)
        external returns (uint256 datanetId)
    {
        require(bytes(name).length > 0 && bytes(name).length <= 64, "name must be 1..64 bytes");
        require(bytes(license).length > 0 && bytes(license).length <= 64, "license must be 1..64 bytes");
        require(dataType < 3, "dataType unknown");
        require(accessPolicy < 2, "accessPolicy unknown");
        require(dailyByteLimit > 0, "dailyByteLimit must be positive");
        require(curatorList.length <= 16, "at most 16 curators");
        datanetId = ++datanetCount;
        Datanet storage d = datanets[datanetId];
        d.owner = msg.sender;
        d.dataType = dataType;
        d.accessPolicy = accessPolicy;
        d.dailyByteLimit = dailyByteLimit;
        d.descriptionHash = descriptionHash;
        d.contributionFee = contributionFee;
        d.name = name;
        d.license = license;
        for (uint256 i = 0; i < curatorList.length; i++) {
            require(curatorList[i] != address(0), "curator is the zero address");
            require(!curators[datanetId][curatorList[i]], "duplicate curator");
            curators[datanetId][curatorList[i]] = true;
        }
        emit DatanetCreated(datanetId, msg.sender, name, dataType, accessPolicy);
    }

    function contribute(uint256 datanetId, bytes32 contentHash, uint64 size) external payable returns (uint256 index) {
        require(datanetId > 0 && datanetId <= datanetCount, "unknown datanet");
        require(contentHash != bytes32(0), "contentHash is zero");
        require(size > 0 && size < 2**48, "size out of range");
        Datanet storage d = datanets[datanetId];
        require(msg.value == d.contributionFee, "wrong contribution fee");
        if (d.accessPolicy == 1) require(allowlist[datanetId][msg.sender], "sender is not on the datanet allowlist");
        Contribution storage c = contributions[datanetId][contentHash];
        require(c.status == 0, "duplicate contribution: contentHash already in this datanet");
        Usage storage u = usage[datanetId][msg.sender];
        uint64 today = uint64(block.timestamp / 86400);
        uint256 used = u.day == today ? uint256(u.bytesUsed) + size : size;
        require(used <= d.dailyByteLimit, "daily byte limit exceeded");
        index = d.contributionCount;
        require(index < type(uint32).max, "datanet is full");
        contributions[datanetId][contentHash] = Contribution(msg.sender, uint48(size), 1, 0, uint32(index));
        contributionList[datanetId][index] = contentHash;
        d.contributionCount = index + 1;
        usage[datanetId][msg.sender] = Usage(today, uint192(used));
        if (msg.value > 0) {
            (bool ok, ) = d.owner.call{value: msg.value}("");
            require(ok, "fee transfer failed");
        }
        emit Contributed(datanetId, contentHash, msg.sender, size, index);
    }

    function curate(uint256 datanetId, bytes32 contentHash, bool accept, uint8 score) external {
        require(datanetId > 0 && datanetId <= datanetCount, "unknown datanet");
        require(score <= 100, "score out of range");
        Datanet storage d = datanets[datanetId];
        require(d.owner == msg.sender || curators[datanetId][msg.sender], "only the datanet owner or a curator may curate");
        Contribution storage c = contributions[datanetId][contentHash];
        require(c.status != 0, "unknown contribution");
        require(c.status == 1, "contribution already curated");
        c.status = accept ? 2 : 3;
        c.score = score;
        if (accept) {
            acceptedList[datanetId][d.acceptedCount] = contentHash;
            d.acceptedCount += 1;
        }
        emit Curated(datanetId, contentHash, msg.sender, accept, score);
    }

    function getContribution(uint256 datanetId, bytes32 contentHash) external view
        returns (address contributor, uint64 size, uint8 status, uint8 score, uint256 index)
    {
        Contribution storage c = contributions[datanetId][contentHash];
        require(c.status != 0, "unknown contribution");
        return (c.contributor, c.size, c.status, c.score, c.index);
    }
}
