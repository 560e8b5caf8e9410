"""A seeded generator of hostile JSON-RPC request bodies: valid requests for every method,
mutated at every level (values, parameter lists, the envelope, batches, the bytes themselves).
The same seed gives the same bodies, so a failure can be replayed (`bodies(seed)[i]`)."""
from __future__ import annotations

import json
import random

ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
ZERO = "0x" + "00" * 20
HASH = "0x" + "ab" * 32

GOOD = [
    "latest", "earliest", "pending", "safe", "finalized", "0x0", "0x1", "0x2", "0x10", ADDRESS, ZERO, HASH,
    "0x" + "00" * 32, "0x", "0x68656c6c6f", True, False, None, [], {}, 0, 1,
    {"to": ADDRESS, "data": "0x"}, {"from": ADDRESS, "to": ZERO, "value": "0x1"}, {"data": "0x6000"},
    {"fromBlock": "0x0", "toBlock": "latest"}, {"address": ADDRESS}, {"topics": [HASH]},
    {"blockHash": HASH}, {"blockNumber": "0x0"}, [ADDRESS], [HASH], [25, 75], "0x5", "newHeads",
]
BAD = [
    2**64, 2**256, -1, -(2**70), 10**30, 1.5, -0.0, 1e308, "", "0x-1", "0xzz", "0x0g", "0x00", "0X1", "0x" + "f" * 65,
    "0x" + "f" * 17, "0x" + "1" * 41, "latest\u0000", "\u202e\u0000\uffff", "0x" + "ab" * 5000, "a" * 3000,
    {"to": 5}, {"to": ADDRESS, "gas": "0x" + "f" * 20}, {"to": ADDRESS, "value": -1},
    {"fromBlock": "0x10", "toBlock": "0x1"}, {"fromBlock": "earliest", "toBlock": "0xffffffffff"},
    {"topics": [[HASH] * 100]}, {"topics": [None] * 10}, {"address": ["0x12"]}, {"blockHash": HASH, "blockNumber": "0x0"},
    [None] * 50, list(range(200)), {"a": {"b": {"c": [1, {"d": None}]}}}, {"__proto__": 1}, {"": ""},
    [[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]], "0x" + "00" * 131072,
]
UNKNOWN_METHODS = ["", "eth_", "eth_foo", "rpc_modules", "a" * 500, "eth_chainId ", "ETH_CHAINID", "debug_setHead",
                   "admin_peers", "personal_sign", "eth_sign", "eth_sendTransaction", "\u0000", "eth_subscribe"]


class Fuzzer:
    def __init__(self, seed: int, methods: list[str], extra_good: list = ()) -> None:
        self.rng = random.Random(seed)
        self.methods = methods
        self.good = GOOD + list(extra_good)

    def atom(self):
        r = self.rng.random()
        if r < 0.45:
            return self.rng.choice(self.good)
        if r < 0.8:
            return self.rng.choice(BAD)
        if r < 0.9:
            return self._mutate_value(self.rng.choice(self.good))
        return self._random_json(3)

    def _random_json(self, depth: int):
        kind = self.rng.randrange(8 if depth > 0 else 6)
        if kind == 0:
            return None
        if kind == 1:
            return self.rng.choice([True, False])
        if kind == 2:
            return self.rng.choice([self.rng.randrange(-2**80, 2**80), self.rng.randrange(-5, 5)])
        if kind == 3:
            return self.rng.uniform(-1e9, 1e9)
        if kind == 4:
            return "0x" + "".join(self.rng.choice("0123456789abcdefABCDEFxg") for _ in range(self.rng.randrange(70)))
        if kind == 5:
            return "".join(chr(self.rng.randrange(1, 0xD7FF)) for _ in range(self.rng.randrange(20)))
        if kind == 6:
            return [self._random_json(depth - 1) for _ in range(self.rng.randrange(5))]
        return {self.rng.choice(["to", "from", "data", "input", "gas", "value", "blockHash", "fromBlock",
                                 "toBlock", "address", "topics", "nonce", "accessList", "x"]): self._random_json(depth - 1)
                for _ in range(self.rng.randrange(5))}

    def _mutate_value(self, value):
        if isinstance(value, str) and value.startswith("0x"):
            choice = self.rng.randrange(5)
            if choice == 0:
                return value + self.rng.choice(["0", "00", "g", " "])
            if choice == 1:
                return value[:-1]
            if choice == 2:
                return value.upper()
            if choice == 3:
                return "0x" + "f" * self.rng.randrange(100)
            return value[2:]
        if isinstance(value, dict):
            mutated = dict(value)
            if mutated and self.rng.random() < 0.5:
                mutated.pop(self.rng.choice(list(mutated)))
            mutated[self.rng.choice(["to", "gas", "data", "value", "fromBlock", "topics", "blockHash"])] = \
                self.rng.choice(BAD + GOOD)
            return mutated
        if isinstance(value, list):
            return value + [self.rng.choice(BAD)]
        return self.rng.choice(BAD)

    def request(self) -> dict:
        r = self.rng.random()
        method = self.rng.choice(UNKNOWN_METHODS) if r < 0.05 else self.rng.choice(self.methods)
        params = [self.atom() for _ in range(self.rng.choice([0, 1, 1, 2, 2, 3, 4, 6]))]
        request = {"jsonrpc": "2.0", "id": self.rng.randrange(1, 2**31), "method": method, "params": params}
        r = self.rng.random()
        if r < 0.04:
            request["params"] = self.rng.choice([{"a": 1}, "0x00", 5, None, True])
        elif r < 0.08:
            request["id"] = self.rng.choice([2**70, -0.0, "x", None, {"a": 1}, [1], True, 1.5, "\u0000"])
        elif r < 0.11:
            request["jsonrpc"] = self.rng.choice(["1.0", 2.0, None, ""])
        elif r < 0.13:
            request.pop(self.rng.choice(["jsonrpc", "method", "id", "params"]))
        elif r < 0.15:
            request["method"] = self.rng.choice([5, None, [], {"a": 1}])
        return request

    def body(self) -> bytes:
        r = self.rng.random()
        if r < 0.12:
            batch = [self.request() for _ in range(self.rng.randrange(1, 20))]
            if self.rng.random() < 0.3:
                batch.insert(self.rng.randrange(len(batch) + 1), self.rng.choice([1, "x", None, [], [1], True]))
            data = json.dumps(batch).encode()
        else:
            data = json.dumps(self.request()).encode()
        r = self.rng.random()
        if r < 0.08:  # byte-level damage
            data = bytearray(data)
            for _ in range(self.rng.randrange(1, 4)):
                op, at = self.rng.randrange(3), self.rng.randrange(len(data) or 1)
                if op == 0 and data:
                    data[at % len(data)] = self.rng.randrange(256)
                elif op == 1:
                    data.insert(at, self.rng.randrange(256))
                elif data:
                    del data[at % len(data)]
            data = bytes(data)
        elif r < 0.1:
            data = data[: self.rng.randrange(len(data) + 1)]
        elif r < 0.11:
            depth = self.rng.choice([100, 1000, 5000, 100_000])
            data = b'{"jsonrpc":"2.0","id":1,"method":"eth_call","params":' + b"[" * depth + b"]" * depth + b"}"
        return data


def bodies(seed: int, count: int, methods: list[str], extra_good: list = ()) -> list[bytes]:
    fuzzer = Fuzzer(seed, methods, extra_good)
    return [fuzzer.body() for _ in range(count)]
