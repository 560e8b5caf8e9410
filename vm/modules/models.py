"""ModelFactory on chain: base models, training-run records and the adapters they produce.

A training run names a published Datanet version; the module copies that version's root from
Datanets state into the run record, so the data a run claims is the data the chain published.

Storage (slots in the Models account):
  0  baseModelCount   1  baseModels[id] -> m: m+0 owner; m+1 weightsHash; m+2 name
  2  runCount         3  runs[id] -> r: r+0 trainer; r+1 datanetId; r+2 version; r+3 dataRoot;
                         r+4 baseModelId; r+5 configHash; r+6 seed | blockNumber << 64;
                         r+7 adapterHash; r+8 metricsHash; r+9 attributionIndexRoot; r+10 adapterId
  4  adapterCount     5  adapters[id] -> a: a+0 owner; a+1 runId; a+2 pricePerInference
"""
from vm.modules import datanets
from vm.modules.abi import Call, NativeModule
from vm.modules.storage import Store, require, slot_of
from vm.modules.system import DATANETS, MODELS

MODEL_COUNT, MODELS_SLOT, RUN_COUNT, RUNS, ADAPTER_COUNT, ADAPTERS = range(6)
MAX_NAME_BYTES = 64
MAX_PRICE = 10**9 * 10**18  # no price above the whole OPEN supply


def run_slot(run_id: int) -> int:
    return slot_of(RUNS, run_id)


def adapter_slot(adapter_id: int) -> int:
    return slot_of(ADAPTERS, adapter_id)


def existing_adapter(st: Store, adapter_id: int) -> int:
    require(0 < adapter_id <= st.read(ADAPTER_COUNT), f"unknown adapter {adapter_id}")
    return adapter_slot(adapter_id)


def adapter_lineage(st: Store, adapter_id: int) -> tuple[bytes, int, int]:
    """(owner, runId, datanetId) of an existing adapter."""
    a = existing_adapter(st, adapter_id)
    run_id = st.read(a + 1)
    return st.read(a).to_bytes(20, "big"), run_id, st.read(run_slot(run_id) + 1)


def register_base_model(call: Call, name, weights_hash):
    raw = name.encode()
    require(0 < len(raw) <= MAX_NAME_BYTES, f"name must be 1..{MAX_NAME_BYTES} bytes")
    require(weights_hash != bytes(32), "weightsHash is zero")
    st = call.store
    model_id = st.add(MODEL_COUNT, 1)
    m = slot_of(MODELS_SLOT, model_id)
    st.write(m, int.from_bytes(call.sender, "big"))
    st.write(m + 1, int.from_bytes(weights_hash, "big"))
    st.write_bytes(m + 2, raw)
    call.emit("BaseModelRegistered", modelId=model_id, owner=call.sender, name=name, weightsHash=weights_hash)
    return model_id


def commit_training_run(call: Call, datanet_id, version, base_model_id, config_hash, seed, adapter_hash,
                        metrics_hash, attribution_index_root):
    for field, value in (("configHash", config_hash), ("adapterHash", adapter_hash), ("metricsHash", metrics_hash),
                         ("attributionIndexRoot", attribution_index_root)):
        require(value != bytes(32), f"{field} is zero")
    return write_run(call, call.sender, datanet_id, version, base_model_id, config_hash, seed, adapter_hash,
                     metrics_hash, attribution_index_root)


def write_run(call: Call, trainer: bytes, datanet_id: int, version: int, base_model_id: int, config_hash: bytes,
              seed: int, adapter_hash: bytes, metrics_hash: bytes, attribution_index_root: bytes) -> int:
    """Record a training run owned by `trainer` and emit TrainingRunCommitted from the Models account:
    `commitTrainingRun`, and TrainingJobs when a paid job completes (the same record either way)."""
    st = call.store_of(MODELS)
    require(0 < base_model_id <= st.read(MODEL_COUNT), f"unknown base model {base_model_id}")
    data_root = datanets.version_root(call.store_of(DATANETS), datanet_id, version)
    run_id = st.add(RUN_COUNT, 1)
    r = run_slot(run_id)
    for offset, value in enumerate((
            int.from_bytes(trainer, "big"), datanet_id, version, int.from_bytes(data_root, "big"), base_model_id,
            int.from_bytes(config_hash, "big"), seed | call.block_number << 64, int.from_bytes(adapter_hash, "big"),
            int.from_bytes(metrics_hash, "big"), int.from_bytes(attribution_index_root, "big"))):
        st.write(r + offset, value)
    call.emit_from(MODULE, "TrainingRunCommitted", runId=run_id, datanetId=datanet_id, trainer=trainer,
                   version=version, dataRoot=data_root, baseModelId=base_model_id, adapterHash=adapter_hash)
    return run_id


def register_adapter(call: Call, run_id, price):
    st = call.store
    require(0 < run_id <= st.read(RUN_COUNT), f"unknown training run {run_id}")
    require(price <= MAX_PRICE, f"pricePerInference {price} above the OPEN supply")
    r = run_slot(run_id)
    require(st.read(r).to_bytes(20, "big") == call.sender, "only the run's trainer may register its adapter")
    require(st.read(r + 10) == 0, "adapter already registered for this run")
    adapter_id = st.add(ADAPTER_COUNT, 1)
    a = adapter_slot(adapter_id)
    st.write(a, int.from_bytes(call.sender, "big"))
    st.write(a + 1, run_id)
    st.write(a + 2, price)
    st.write(r + 10, adapter_id)
    call.emit("AdapterRegistered", adapterId=adapter_id, runId=run_id, owner=call.sender, pricePerInference=price)
    return adapter_id


def get_base_model(call: Call, model_id):
    st = call.store
    require(0 < model_id <= st.read(MODEL_COUNT), f"unknown base model {model_id}")
    m = slot_of(MODELS_SLOT, model_id)
    return st.read(m).to_bytes(20, "big"), st.read_bytes(m + 2).decode(), st.read(m + 1).to_bytes(32, "big")


def get_training_run(call: Call, run_id):
    st = call.store
    require(0 < run_id <= st.read(RUN_COUNT), f"unknown training run {run_id}")
    w = [st.read(run_slot(run_id) + i) for i in range(10)]
    h = lambda v: v.to_bytes(32, "big")  # noqa: E731
    return (w[0].to_bytes(20, "big"), w[1], w[2], h(w[3]), w[4], h(w[5]), w[6] & (2**64 - 1), h(w[7]), h(w[8]),
            h(w[9]), w[6] >> 64)


def get_adapter(call: Call, adapter_id):
    a = existing_adapter(call.store, adapter_id)
    return call.store.read(a).to_bytes(20, "big"), call.store.read(a + 1), call.store.read(a + 2)


def _count(slot: int):
    return lambda call: call.store.read(slot)


MODULE = NativeModule("Models", MODELS, {
    "registerBaseModel": register_base_model,
    "commitTrainingRun": commit_training_run,
    "registerAdapter": register_adapter,
    "baseModelCount": _count(MODEL_COUNT),
    "runCount": _count(RUN_COUNT),
    "adapterCount": _count(ADAPTER_COUNT),
    "getBaseModel": get_base_model,
    "getTrainingRun": get_training_run,
    "getAdapter": get_adapter,
})
