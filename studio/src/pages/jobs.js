// OpenLoRA jobs: request a paid inference (the prompt is stored on this node, the adapter's price
// escrowed by the chain) and watch it go through result, attestations, attribution and the split.
import { decodeEventLog, keccak256, toHex } from "viem";
import { ABI, count, logs, ol } from "../chain.js";
import { $, JOB, PROOF, addr, badge, hash, html, num, open, set, table, text } from "../html.js";
import { onSubmit } from "../ui.js";
import { UserError, send } from "../wallet.js";

export async function render(el, params) {
  if (params[0] && params[0] !== "request") return detail(el, Number(params[0]));
  return list(el, params[0] === "request" ? Number(params[1]) : null);
}

async function list(el, adapterId) {
  const na = await count("Models", "adapterCount");
  const adapters = await Promise.all(Array.from({ length: na }, (_, i) => ol("getAdapter", toHex(i + 1))));
  set(el, html`<h1>Inference jobs</h1>
    <section><h2>Request an inference</h2>
    ${adapters.length ? html`<form id="request-form" class="grid">
      <label>Adapter <select name="adapter">${adapters.map((a) => html`<option value="${num(a.id)}" ${num(a.id) === adapterId ? "selected" : ""}>
        adapter ${num(a.id)} (run ${num(a.runId)}): ${open(a.pricePerInference)}</option>`)}</select></label>
      <label class="wide">Prompt <textarea name="prompt" rows="3" required placeholder="The capital of France is"></textarea></label>
      <p class="muted wide">The adapter's price is escrowed by the chain and split when the answer's attribution is final.</p>
      <button type="submit">Request</button><p class="msg" role="status"></p></form>`
      : html`<p class="muted">No adapter registered yet: train one (see Models).</p>`}</section>
    <section><h2>Recent jobs</h2><div id="job-list"></div></section>`);
  if (adapters.length) {
    onSubmit($("#request-form"), async (f, status) => {
      const prompt = f.get("prompt").trim();
      if (!prompt) throw new UserError("Prompt: write a prompt first. Nothing was sent.");
      const bytes = new TextEncoder().encode(prompt);
      if (bytes.length > 65536) throw new UserError(`Prompt: ${bytes.length} bytes, above the 65536-byte limit. Nothing was sent.`);
      const adapter = adapters.find((a) => num(a.id) === Number(f.get("adapter")));
      const price = BigInt(adapter.pricePerInference);
      const promptHash = keccak256(bytes);
      const receipt = await send({ module: "InferenceJobs", fn: "requestInference", args: [BigInt(adapter.id), promptHash, price],
        value: price, status, prepare: () => ol("putBlob", toHex(bytes), promptHash, true) });
      const event = receipt.logs.map((l) => { try { return decodeEventLog({ abi: ABI.InferenceJobs, data: l.data, topics: l.topics }); } catch { return null; } })
        .find((e) => e && e.eventName === "InferenceRequested");
      location.hash = `#/jobs/${event.args.jobId}`;
      return `Job ${event.args.jobId} requested.`;
    });
  }
  return async () => {
    const n = await count("InferenceJobs", "jobCount");
    const ids = Array.from({ length: Math.min(n, 30) }, (_, i) => toHex(n - i));
    const jobs = await Promise.all(ids.map((i) => ol("getJob", i)));
    set($("#job-list"), table(["#", "adapter", "requester", "fee", "status", "votes"], jobs.map((j) => [
      html`<a href="#/jobs/${num(j.id)}">${num(j.id)}</a>`, num(j.adapterId), addr(j.requester), open(j.fee),
      badge(JOB[num(j.status)]), `${num(j.validVotes)} valid / ${num(j.invalidVotes)} invalid`]), "No jobs yet."));
  };
}

const blobs = new Map();
const blob = (h) => { if (!blobs.has(h)) blobs.set(h, ol("getBlob", h).then(text, () => null)); return blobs.get(h); };

async function detail(el, id) {
  set(el, html`<p><a href="#/jobs">← all jobs</a></p><h1>Job ${id}</h1><div id="job"></div>`);
  return async () => {
    const job = await ol("getJob", toHex(id));
    const status = num(job.status);
    const jid = BigInt(id);
    const [attests, posted, splits] = await Promise.all([logs("InferenceJobs", "Attested", { jobId: jid }),
      logs("Attribution", "ProofPosted", { jobId: jid }), logs("Attribution", "FeeSplit", { jobId: jid })]);
    const proof = posted.length ? await ol("getProof", toHex(id)).catch(() => null) : null;
    const prompt = await blob(job.promptHash);
    let answer = null;
    if (status >= 2) {
      const raw = await blob(job.outputHash);
      try { answer = JSON.parse(raw).text; } catch { answer = raw; }
    }
    const steps = [
      ["requested", true, html`${addr(job.requester)} paid ${open(job.fee)} for adapter ${num(job.adapterId)}`],
      ["result submitted", status >= 2, status >= 2 ? html`by ${addr(job.submitter)}: output ${hash(job.outputHash)}` : "waiting for a GPU validator"],
      ["attested", attests.length > 0, html`${num(job.validVotes)} valid, ${num(job.invalidVotes)} invalid`],
      [status === 4 ? "failed" : "succeeded", status >= 3, status === 4 ? "the fee was refunded" : status === 3 ? "quorum reached" : "waiting for the quorum"],
      ["attribution posted", !!proof, proof ? html`${badge(PROOF[num(proof.status)])} by ${addr(proof.poster)}` : "waiting for a proof"],
      ["fee split paid", splits.length > 0, splits.length ? html`<a href="#/attribution/${id}">see the split</a>` : ""],
    ];
    set($("#job"), html`<p>Status: ${badge(JOB[status])}</p>
      <ol class="timeline">${steps.map(([word, done, what]) => html`<li class="${done ? "done" : "todo"}"><b>${word}</b> <span>${what}</span></li>`)}</ol>
      <h2>Prompt</h2><blockquote id="prompt">${prompt ?? "(not on this node)"}</blockquote>
      <h2>Answer</h2><blockquote id="answer">${answer ?? "(none yet)"}</blockquote>
      <h2>Attestations</h2>${table(["validator", "vote", "block"], attests.map((a) => [addr(a.validator),
        badge(a.valid ? "valid" : "invalid"), Number(a.blockNumber)]), "No votes yet.")}
      ${proof ? html`<p><a class="button" href="#/attribution/${id}">Attribution of this answer →</a></p>` : ""}`);
  };
}
