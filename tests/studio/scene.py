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


def start(tmp: pathlib.Path, block_time: str = "0.25") -> NodeProcess:
    """`openledger devnet` as `make run` starts it (studio on), with short blocks and dispute window."""
    return devnet_process(tmp / "devnet", "--block-time", block_time,
                          "--param", f"dispute_window_s={DISPUTE_WINDOW_S}").wait_ready(120)


def fill(url: str) -> dict:
    """Put the content on the chain; returns the names the tests look for."""
    c = [Client(url, key) for _, key in DEV]
    description = b"Short facts, one a row"
    c[0].put_blob(description, public=True)
    from eth_utils import keccak
    c[0].send("Datanets", "createDatanet", "facts", keccak(description), 0, "CC-BY-4.0", 0, 0, 10**7, [DEV[1][0]])
    hashes = []
    for row in ROWS:
        h = c[2].put_blob(row.encode())
        c[2].send("Datanets", "contribute", 1, h, len(row.encode()))
        hashes.append(h)
    for h in hashes[:3]:
        c[0].send("Datanets", "curate", 1, h, True, 80)
    c[0].send("Datanets", "publishVersion", 1)
    c[1].send("Datanets", "curate", 1, hashes[3], True, 90)  # the curator
    c[1].send("Datanets", "curate", 1, hashes[4], False, 10)
    c[0].send("Datanets", "publishVersion", 1)  # v2: 4 rows; row 5 stays pending

    weights_hash = keccak(b"tiny-llama weights")
    c[3].send("Models", "registerBaseModel", "tiny-llama", weights_hash)
    config = c[3].put_blob(b'{"lora_r": 8, "epochs": 8}', public=True)
    metrics = c[3].put_blob(json.dumps([{"step": 1, "loss": 2.5}, {"step": 2, "loss": 1.25}]).encode(), public=True)
    adapter = c[3].put_blob(b"adapter manifest stand-in", public=True)
    c[3].send("Models", "commitTrainingRun", 1, 2, 1, config, 7, adapter, metrics, keccak(b"index"))
    c[3].send("Models", "registerAdapter", 1, OPEN)

    for v in (4, 5, 6):
        c[v].send("Staking", "registerValidator", 50_000, 1, value=200 * OPEN)
    c[8].send("Staking", "delegate", DEV[4][0], value=50 * OPEN)

    def job(prompt: str, answer: str, valid: bool) -> int:
        p = c[7].put_blob(prompt.encode(), public=True)
        receipt = c[7].send("InferenceJobs", "requestInference", 1, p, OPEN, value=OPEN)
        job_id = next(e["args"]["jobId"] for e in receipt["events"] if e["event"] == "InferenceRequested")
        out = c[4].put_blob(json.dumps({"job": job_id, "text": answer}).encode(), public=True)
        act = c[4].put_blob(b"activation commitment stand-in %d" % job_id, public=True)
        c[4].send("InferenceJobs", "submitResult", job_id, out, act)
        for v in (5, 6):
            c[v].send("InferenceJobs", "attest", job_id, valid)
        return job_id, out

    paid, out = job("The capital of France is", " Paris, on the Seine.", True)
    proof = c[4].put_blob(b"attribution proof stand-in", public=True)
    c[4].send("Attribution", "postProof", paid, out, proof, 2, hashes[:3], WEIGHTS)
    failed, _ = job("Bread rises because", " of the moon.", False)  # two invalid votes: refunded, submitter slashed
    time.sleep(DISPUTE_WINDOW_S + 1)
    c[9].send("Attribution", "finaliseProof", paid, gas=300_000)
    return {"datanet": 1, "rows": ROWS, "hashes": ["0x" + h.hex() for h in hashes], "paid_job": paid,
            "failed_job": failed, "adapter": 1}
