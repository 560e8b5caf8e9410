// ModelFactory: base models, training runs (the record the chain holds, and what can be checked
// from here), adapters with their price and usage.
import { toHex } from "viem";
import { count, logs, ol } from "../chain.js";
import { $, addr, badge, hash, html, num, open, set, table, text } from "../html.js";

const served = new Map();

/** Whether the node serves the public object behind `h` (it re-checks the hash when it reads). */
function isServed(h) {
  if (!served.has(h)) served.set(h, ol("getBlob", h).then((b) => b, () => null));
  return served.get(h);
}

async function runCheck(run) {
  const [version, adapter, config, metrics] = await Promise.all([
    ol("getVersion", run.datanetId, run.version).catch(() => null),
    isServed(run.adapterHash), isServed(run.configHash), isServed(run.metricsHash)]);
  const rootOk = version && version.root === run.dataRoot;
  const missing = [["adapter", adapter], ["config", config], ["metrics", metrics]].filter(([, b]) => !b).map(([n]) => n);
  let loss = "";
  try {
    const steps = JSON.parse(text(metrics));
    const last = Array.isArray(steps) ? steps[steps.length - 1] : steps;
    if (last && typeof last.loss === "number") loss = `loss ${last.loss.toFixed(4)} after ${steps.length} steps`;
  } catch { /* metrics not JSON or not served */ }
  const word = rootOk && !missing.length ? "record complete" : "incomplete";
  const why = [rootOk ? `data root = Datanet v${num(run.version)} root` : "data root differs from the version's",
    missing.length ? `not served: ${missing.join(", ")}` : "adapter, config and metrics served (hash-checked)"].join("; ");
  return { word, why, loss };
}

export async function render(el) {
  set(el, html`<h1>Models</h1>
    <section><h2>Base models</h2><div id="base-models"></div></section>
    <section><h2>Training runs</h2>
      <p class="muted">The chain copies the Datanet version's root into each run record. Re-training from the record is
      <code>openledger verify-run --chain-run N</code>; here the record's objects are fetched and hash-checked.</p>
      <div id="runs"></div></section>
    <section><h2>Adapters</h2><div id="adapters"></div></section>`);
  return async () => {
    const [nb, nr, na] = await Promise.all([count("Models", "baseModelCount"), count("Models", "runCount"), count("Models", "adapterCount")]);
    const ids = (n) => Array.from({ length: n }, (_, i) => toHex(i + 1));
    const [bases, runs, adapters, requested] = await Promise.all([
      Promise.all(ids(nb).map((i) => ol("getBaseModel", i))), Promise.all(ids(nr).map((i) => ol("getTrainingRun", i))),
      Promise.all(ids(na).map((i) => ol("getAdapter", i))), logs("InferenceJobs", "InferenceRequested")]);
    set($("#base-models"), table(["#", "name", "owner", "weights hash"], bases.map((b) => [
      num(b.id), b.name, addr(b.owner), hash(b.weightsHash)]), "No base model registered yet."));
    const checks = await Promise.all(runs.map(runCheck));
    set($("#runs"), table(["#", "trainer", "data", "base model", "seed", "adapter hash", "metrics", "record", "block"],
      runs.map((r, i) => [num(r.id), addr(r.trainer), html`<a href="#/datanets/${num(r.datanetId)}">Datanet ${num(r.datanetId)} v${num(r.version)}</a>`,
        num(r.baseModelId), num(r.seed), hash(r.adapterHash), checks[i].loss || hash(r.metricsHash),
        html`${badge(checks[i].word)} <small class="muted">${checks[i].why}</small>`, num(r.blockNumber)]),
      "No training run committed yet."));
    set($("#adapters"), table(["#", "owner", "run", "price per inference", "jobs", "fees paid in", ""], adapters.map((a) => {
      const used = requested.filter((l) => l.adapterId === BigInt(a.id));
      const fees = used.reduce((s, l) => s + l.fee, 0n);
      return [num(a.id), addr(a.owner), num(a.runId), open(a.pricePerInference), used.length, open(fees),
        html`<a class="button" href="#/jobs/request/${num(a.id)}">Request an inference</a> <a href="#/attribution/adapter/${num(a.id)}">graph</a>`];
    }), "No adapter registered yet."));
  };
}
