"""vm/tracing on the execution-apis chain: struct logs equal go-ethereum's recorded answers,
callTracer frames, limits and bad configurations."""
import json

import pytest
from eth_utils import encode_hex

from tests.conformance.chain import TESTS, imported_chain
from vm.tracing import TraceConfig, TraceError, TraceLimitExceeded, TraceLimits, parse_duration, trace_block, \
    trace_transaction


def geth_style(result: dict) -> dict:
    """geth leaves out a zero `refund` (the spec says clients SHOULD send it; we and anvil do)."""
    logs = [{k: v for k, v in entry.items() if not (k == "refund" and v == 0)} for entry in result["structLogs"]]
    return {**result, "structLogs": logs}


def recorded(method: str, name: str) -> list[tuple[dict, dict]]:
    lines = [line[3:] for line in (TESTS / method / f"{name}.io").read_text().splitlines()
             if line.startswith((">> ", "<< "))]
    return [(json.loads(a), json.loads(b)) for a, b in zip(lines[::2], lines[1::2])]


@pytest.mark.parametrize("name", ["trace-block-return-data-behavior", "trace-block-storage-snapshot-timing"])
def test_struct_logs_equal_geths_recorded_block_traces(name):
    chain = imported_chain()
    for request, response in recorded("debug_traceBlockByNumber", name):
        number, config = request["params"]
        block = chain.get_canonical_block_by_number(int(number, 16))
        traces = trace_block(chain, block, TraceConfig.from_json(config))
        ours = [{"txHash": encode_hex(tx.hash), "result": geth_style(r)} for tx, r in zip(block.transactions, traces)]
        assert ours == response["result"]


def test_single_transaction_trace_equals_geths():
    chain = imported_chain()
    (request, response), = recorded("debug_traceTransaction", "trace-contract-call")
    block = chain.get_canonical_block_by_number(1)
    index = [encode_hex(tx.hash) for tx in block.transactions].index(request["params"][0])
    assert geth_style(trace_transaction(chain, block, index, TraceConfig())) == response["result"]


def test_call_tracer_frames_nest_and_account_gas():
    chain = imported_chain()
    for number in range(1, 46):
        block = chain.get_canonical_block_by_number(number)
        receipts = chain.chaindb.get_receipts(block.header, chain.get_vm_class(block.header).get_receipt_builder())
        frames = trace_block(chain, block, TraceConfig.from_json({"tracer": "callTracer"}))
        assert len(frames) == len(block.transactions)
        previous = 0
        for tx, frame, receipt in zip(block.transactions, frames, receipts):
            assert frame["type"] in ("CALL", "CREATE")
            assert int(frame["gasUsed"], 16) == receipt.gas_used - previous
            assert 0 <= int(frame["gas"], 16) <= tx.gas - 21000  # geth: the gas left after intrinsic gas
            previous = receipt.gas_used
            for child in frame.get("calls", []):
                assert child["type"] in ("CALL", "CREATE", "CREATE2", "STATICCALL", "DELEGATECALL", "CALLCODE")
                assert int(child["gasUsed"], 16) <= int(child["gas"], 16)


def test_tracing_does_not_touch_the_chain_database():
    chain = imported_chain()
    store = chain.chaindb.db.wrapped_db.kv_store  # AtomicDB over MemoryDB
    before = dict(store)
    for number in (1, 2, 45):
        trace_block(chain, chain.get_canonical_block_by_number(number), TraceConfig())
        trace_block(chain, chain.get_canonical_block_by_number(number), TraceConfig(tracer="callTracer"))
    assert store == before


def test_step_limit_and_output_limit_abort_the_trace():
    chain = imported_chain()
    block = chain.get_canonical_block_by_number(2)
    with pytest.raises(TraceLimitExceeded, match="steps"):
        trace_block(chain, block, TraceConfig(), TraceLimits(max_steps=50))
    with pytest.raises(TraceLimitExceeded, match="bytes"):
        trace_block(chain, block, TraceConfig(enable_memory=True), TraceLimits(max_output_bytes=4096))
    with pytest.raises(TraceLimitExceeded, match="timeout"):
        trace_block(chain, block, TraceConfig(), TraceLimits(timeout_s=0))


def test_struct_logger_step_cap_keeps_executing():
    chain = imported_chain()
    block = chain.get_canonical_block_by_number(2)
    full = trace_block(chain, block, TraceConfig())
    capped = trace_block(chain, block, TraceConfig(limit=5))
    assert [len(r["structLogs"]) for r in capped] == [min(5, len(r["structLogs"])) for r in full]
    assert [r["gas"] for r in capped] == [r["gas"] for r in full]


def test_genesis_is_not_traceable():
    chain = imported_chain()
    with pytest.raises(TraceError, match="genesis is not traceable"):
        trace_block(chain, chain.get_canonical_block_by_number(0), TraceConfig())


@pytest.mark.parametrize("config, message", [
    ({"tracer": "prestateTracerX"}, "tracer not found"),
    ({"tracer": 5}, "tracer must be a string"),
    ({"disableStack": "yes"}, "disableStack"),
    ({"limit": -1}, "limit"),
    ({"timeout": "5 parsecs"}, "duration"),
    ({"tracerConfig": []}, "tracerConfig"),
    ([], "object"),
])
def test_bad_trace_configs_are_refused(config, message):
    with pytest.raises(TraceError, match=message):
        TraceConfig.from_json(config)


def test_go_durations():
    assert parse_duration("1m30s") == 90 and parse_duration("300ms") == pytest.approx(0.3)
