// Proof of Attribution: for an answer, which contributions shaped it and with what weight, and the
// fee split the chain paid; per adapter, the graph contributions -> adapter -> answers.
import { toHex } from "viem";
import { logs, ol } from "../chain.js";
import { flowGraph, stackBar } from "../charts.js";
import { $, METHOD, PROOF, ROLE, addr, badge, hash, html, num, open, ppm, set, short, table } from "../html.js";

export async function render(el, params) {
  if (params[0] === "adapter") return adapterPage(el, Number(params[1]));
  if (params[0]) return answer(el, Number(params[0]));
  return index(el);
}

async function proofsOfAdapter(adapterId) {
  const requested = await logs("InferenceJobs", "InferenceRequested", { adapterId: BigInt(adapterId) });
  const posted = await logs("Attribution", "ProofPosted");
  const withProof = requested.filter((r) => posted.some((p) => p.jobId === r.jobId));
  return Promise.all(withProof.map(async (r) => ({ job: r, proof: await ol("getProof", toHex(r.jobId)) })));
}

/** The graph of one adapter: every contribution its answers' proofs name -> the adapter -> the answers. */
async function graph(adapterId, focusJob) {
  const items = await proofsOfAdapter(adapterId);
  if (!items.length) return html`<p class="muted">No attributed answers of adapter ${adapterId} yet.</p>`;
  const contributions = new Map();
  for (const { proof } of items) {
    for (const e of proof.entries) {
      const c = contributions.get(e.contentHash) || { weight: 0, contributor: e.contributor };
      c.weight += num(e.weightPpm);
      contributions.set(e.contentHash, c);
    }
  }
  const a = `a${adapterId}`;
  const left = [...contributions].map(([h, c]) => ({ id: h, kind: "contribution", label: `${short(h)}`,
    title: `contribution ${h} by ${c.contributor}: ${(c.weight / 10_000).toFixed(2)}% summed over answers`, href: `#/account/${c.contributor}` }));
  const right = items.map(({ job, proof }) => ({ id: `j${job.jobId}`, kind: `answer${Number(job.jobId) === focusJob ? " focus" : ""}`,
    label: `answer ${job.jobId} (${PROOF[num(proof.status)]})`, href: `#/attribution/${job.jobId}`,
    title: `job ${job.jobId}: fee ${open(job.fee)}` }));
  const edges = [...[...contributions].map(([h, c]) => ({ from: h, to: a, weight: c.weight, title: `${(c.weight / 10_000).toFixed(2)}%` })),
    ...items.map(({ job }) => ({ from: a, to: `j${job.jobId}`, weight: Number(job.fee / 10n ** 12n) || 1, title: open(job.fee) }))];
  return flowGraph({ left, middle: [{ id: a, kind: "adapter", label: `adapter ${adapterId}`, href: "#/models" }], right, edges });
}

async function index(el) {
  set(el, html`<h1>Attribution</h1>
    <p class="muted">Each paid answer gets a proof of which accepted contributions shaped it (weights sum to 100%); after the
    dispute window the fee is split: contributors by weight, the model owner, the validators who served and attested, the treasury.</p>
    <div id="proofs"></div><div id="graphs"></div>`);
  return async () => {
    const [posted, splits, requested] = await Promise.all([logs("Attribution", "ProofPosted"), logs("Attribution", "FeeSplit"),
      logs("InferenceJobs", "InferenceRequested")]);
    set($("#proofs"), table(["answer (job)", "adapter", "poster", "method", "dispute deadline", "split paid"], [...posted].reverse().map((p) => {
      const split = splits.find((s) => s.jobId === p.jobId);
      const req = requested.find((r) => r.jobId === p.jobId);
      return [html`<a href="#/attribution/${p.jobId}">job ${p.jobId}</a>`, req ? Number(req.adapterId) : "?", addr(p.poster),
        METHOD[p.methodId] || p.methodId, new Date(Number(p.disputeDeadline) * 1000).toLocaleString(),
        split ? open(split.contributors + split.modelOwner + split.validators + split.treasury) : "not yet"];
    }), "No attribution proofs yet."));
    const adapters = [...new Set(posted.map((p) => requested.find((r) => r.jobId === p.jobId)).filter(Boolean).map((r) => Number(r.adapterId)))];
    const graphs = await Promise.all(adapters.slice(0, 5).map((a) => graph(a)));
    set($("#graphs"), html`${adapters.slice(0, 5).map((a, i) => html`<section><h2>Adapter ${a}: contributions → adapter → answers</h2>${graphs[i]}</section>`)}`);
  };
}

async function adapterPage(el, adapterId) {
  set(el, html`<p><a href="#/attribution">← all attributions</a></p><h1>Adapter ${adapterId}</h1><div id="graph"></div>`);
  return async () => set($("#graph"), await graph(adapterId));
}

async function answer(el, jobId) {
  set(el, html`<p><a href="#/attribution">← all attributions</a></p><h1>Attribution of answer ${jobId}</h1><div id="attribution"></div>`);
  return async () => {
    const job = await ol("getJob", toHex(jobId));
    const posted = await logs("Attribution", "ProofPosted", { jobId: BigInt(jobId) });
    if (!posted.length) {
      set($("#attribution"), html`<p class="muted">No proof posted for job ${jobId} yet (status: <a href="#/jobs/${jobId}">see the job</a>).</p>`);
      return;
    }
    const [proof, splits, paid, adapter] = await Promise.all([ol("getProof", toHex(jobId)), logs("Attribution", "FeeSplit", { jobId: BigInt(jobId) }),
      logs("Attribution", "RewardPaid", { jobId: BigInt(jobId) }), ol("getAdapter", job.adapterId)]);
    const run = await ol("getTrainingRun", adapter.runId);
    const split = splits[splits.length - 1];
    set($("#attribution"), html`<dl class="facts"><dt>job</dt><dd><a href="#/jobs/${jobId}">${jobId}</a></dd>
        <dt>adapter</dt><dd>${num(job.adapterId)} (Datanet <a href="#/datanets/${num(run.datanetId)}">${num(run.datanetId)}</a> v${num(run.version)})</dd>
        <dt>fee</dt><dd>${open(job.fee)}</dd><dt>proof</dt><dd>${badge(PROOF[num(proof.status)])} ${hash(proof.proofHash)}</dd>
        <dt>method</dt><dd>${METHOD[num(proof.methodId)] || num(proof.methodId)}</dd><dt>poster</dt><dd>${addr(proof.poster)}</dd></dl>
      <h2>Contributions that shaped this answer</h2>
      ${table(["contribution", "contributor", "weight", ""], proof.entries.map((e) => [hash(e.contentHash), addr(e.contributor), ppm(e.weightPpm),
        html`<span class="barbox"><span class="bar" style="width:${num(e.weightPpm) / 10_000}%"></span></span>`]))}
      <h2>Fee split</h2>
      ${split ? html`<div id="split">${stackBar([["contributors", split.contributors], ["model owner", split.modelOwner],
          ["validators", split.validators], ["treasury", split.treasury]].map(([label, value]) => ({ label, value, text: open(value) })))}</div>
        ${table(["paid to", "role", "amount", "block"], paid.map((p) => [addr(p.account), ROLE[p.role], open(p.amount), Number(p.blockNumber)]))}`
      : html`<p class="muted">Not paid yet: the dispute window ends ${new Date(num(proof.disputeDeadline) * 1000).toLocaleTimeString()}, then anyone may finalise.</p>`}
      <h2>Graph of adapter ${num(job.adapterId)}</h2>${await graph(num(job.adapterId), jobId)}`);
  };
}
