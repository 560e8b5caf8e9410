"""Fixtures for the native modules: a fresh in-memory chain and a populated "world" on it."""
import dataclasses

import pytest
from tests.native.native_chain import NativeChain

OPEN = 10**18
H = lambda n: n.to_bytes(32, "big")  # noqa: E731  a distinct non-zero bytes32 per small integer


@dataclasses.dataclass
class World:
    """Datanet 1 (owner dev0, curator dev1) with contributions H(1..3) by dev2 (H(1), H(2) accepted,
    version 1 published), base model 1, run 1 and adapter 1 (price 1 OPEN) by dev3, GPU validators
    dev4..dev6 staked with 200 OPEN each. dev7 is the inference user."""

    nc: NativeChain
    keys: list[str]
    addrs: list[str]


def build_world(nc: NativeChain) -> World:
    k, a = nc.keys, nc.addresses
    steps = [
        (k[0], "Datanets", "createDatanet", ("wiki", H(100), 0, "CC-BY-4.0", 0, 0, 10**6, [a[1]]), 0),
        *[(k[2], "Datanets", "contribute", (1, H(i), 1000 * i), 0) for i in (1, 2, 3)],
        (k[1], "Datanets", "curate", (1, H(1), True, 90), 0),
        (k[1], "Datanets", "curate", (1, H(2), True, 70), 0),
        (k[0], "Datanets", "publishVersion", (1,), 0),
        (k[0], "Models", "registerBaseModel", ("tiny-gpt2", H(200)), 0),
        (k[3], "Models", "commitTrainingRun", (1, 1, 1, H(201), 7, H(202), H(203), H(204)), 0),
        (k[3], "Models", "registerAdapter", (1, OPEN), 0),
        *[(k[v], "Staking", "registerValidator", (50_000, 1), 200 * OPEN) for v in (4, 5, 6)],
    ]
    for key, module, fn, args, value in steps:
        r = nc.send(key, module, fn, *args, value=value)
        assert r.ok, (fn, r.reason)
    return World(nc, k, a)


@pytest.fixture
def nc() -> NativeChain:
    return NativeChain()


@pytest.fixture
def world(nc) -> World:
    return build_world(nc)
