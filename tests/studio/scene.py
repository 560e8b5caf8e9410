"""A devnet with content for the studio: every module has something to show, made through the SDK
(real signed transactions to a real `openledger devnet`) in a few seconds, without a model: the
objects a run or a job names are stored as the services store them (public blobs), but their bytes
are small stand-ins, so the pages have rows, versions, a run, an adapter, jobs (one attributed and
paid, one failed with its submitter slashed), validators and a delegation.

Dev accounts: 0 owns Datanet 1 (1 is its curator), 2 contributes, 3 trains, 4-6 validate, 7 asks,
8 delegates, 9 finalises."""
from __future__ import annotations

import json
import pathlib
import time

import genesis
from node.sdk import Client
from tests.rpc.nodes import NodeProcess, devnet_process

OPEN = 10**18
DEV = genesis.dev_accounts()
ROWS = ["The river Thames flows through London and reaches the North Sea.",
        "Bread rises because yeast turns sugar into gas.",
        "A triangle has three sides and its angles add up to 180 degrees.",
        "Paris is the capital of France and sits on the Seine.",
        "Bees carry pollen from flower to flower.",
        "Ice melts at zero degrees Celsius at sea level."]
DISPUTE_WINDOW_S = 2
WEIGHTS = [500_000, 300_000, 200_000]


GAS = 1_000_000  # a fixed limit: a round's transactions are sent before the ones they depend on are mined


def start(tmp: pathlib.Path, block_time: str = "1") -> NodeProcess:
    """`openledger devnet` as `make run` starts it (1 s blocks, the studio on), with a short dispute window."""
    return devnet_process(tmp / "devnet", "--block-time", block_time,
                          "--param", f"dispute_window_s={DISPUTE_WINDOW_S}").wait_ready(120)


def rounds(url: str, *batches: list[tuple]) -> list[list[dict]]:
    """Send each batch's calls (key index, module, fn, args..., value=) together, so they share a block,
    and wait for all of them before the next batch; the receipts, batch by batch."""
    clients = {}
    out = []
    for batch in batches:
        nonces, hashes = {}, []
        for who, module, fn, *args in batch:
            value = args.pop()["value"] if args and isinstance(args[-1], dict) else 0
            c = clients.setdefault(who, Client(url, DEV[who][1]))
            if who not in nonces:
                nonces[who] = int(c.rpc("eth_getTransactionCount", c.address, "pending"), 16)
            raw, _ = c.build(module, fn, *args, value=value, nonce=nonces[who], gas=GAS)
            nonces[who] += 1
            hashes.append((c, c.rpc("eth_sendRawTransaction", "0x" + raw.hex())))
        out.append([c.wait(h) for c, h in hashes])
    return out


def finalise(url: str, job_id: int, who: int = 9) -> dict:
    """finaliseProof once a block can be past the proof's dispute deadline (chain time, not ours)."""
    c = Client(url, DEV[who][1])
    deadline = int(c.ol("getProof", hex(job_id))["disputeDeadline"], 16)
    while int(c.rpc("eth_getBlockByNumber", "latest", False)["timestamp"], 16) < deadline:
        time.sleep(0.2)
    return c.send("Attribution", "finaliseProof", job_id, gas=GAS)


def fill(url: str) -> dict:
    """Put the content on the chain (in nine blocks); returns the names the tests look for."""
    from eth_utils import keccak

    c = [Client(url, key) for _, key in DEV]
    description = b"Short facts, one a row"
    c[0].put_blob(description, public=True)
    hashes = [c[2].put_blob(row.encode()) for row in ROWS]
    config = c[3].put_blob(b'{"lora_r": 8, "epochs": 8}', public=True)
    metrics = c[3].put_blob(json.dumps([{"step": 1, "loss": 2.5}, {"step": 2, "loss": 1.25}]).encode(), public=True)
    adapter = c[3].put_blob(b"adapter manifest stand-in", public=True)
    prompts = [c[7].put_blob(p.encode(), public=True) for p in ("The capital of France is", "Bread rises because")]
    outputs = [c[4].put_blob(json.dumps({"job": j, "text": t}).encode(), public=True)
               for j, t in ((1, " Paris, on the Seine."), (2, " of the moon."))]
    acts = [c[4].put_blob(b"activation commitment stand-in %d" % j, public=True) for j in (1, 2)]
    proof = c[4].put_blob(b"attribution proof stand-in", public=True)
    rounds(url,
           [(0, "Datanets", "createDatanet", "facts", keccak(description), 0, "CC-BY-4.0", 0, 0, 10**7, [DEV[1][0]]),
            (3, "Models", "registerBaseModel", "tiny-llama", keccak(b"tiny-llama weights")),
            *[(v, "Staking", "registerValidator", 50_000, 1, {"value": 200 * OPEN}) for v in (4, 5, 6)]],
           [*[(2, "Datanets", "contribute", 1, h, len(r.encode())) for h, r in zip(hashes, ROWS)],
            (8, "Staking", "delegate", DEV[4][0], {"value": 50 * OPEN})],
           [*[(0, "Datanets", "curate", 1, h, True, 80) for h in hashes[:3]], (0, "Datanets", "publishVersion", 1)],
           [(1, "Datanets", "curate", 1, hashes[3], True, 90), (1, "Datanets", "curate", 1, hashes[4], False, 10),
            (3, "Models", "commitTrainingRun", 1, 1, 1, config, 7, adapter, metrics, keccak(b"index")),
            (3, "Models", "registerAdapter", 1, OPEN)],
           [(0, "Datanets", "publishVersion", 1),  # v2: 4 rows; row 5 stays pending
            *[(7, "InferenceJobs", "requestInference", 1, p, OPEN, {"value": OPEN}) for p in prompts]],
           [(4, "InferenceJobs", "submitResult", j, o, a) for j, o, a in zip((1, 2), outputs, acts)],
           [(v, "InferenceJobs", "attest", j, j == 1) for v in (5, 6) for j in (1, 2)],  # job 2: invalid, slashed
           [(4, "Attribution", "postProof", 1, outputs[0], proof, 2, hashes[:3], WEIGHTS)])
    finalise(url, 1)
    return {"datanet": 1, "rows": ROWS, "hashes": ["0x" + h.hex() for h in hashes], "paid_job": 1,
            "failed_job": 2, "adapter": 1}
