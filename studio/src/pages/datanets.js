// Datanets: list and search; one Datanet's versions (growth picture), contributions, contributing
// a file, and curation and publishing for its owner or curators.
import { keccak256, toHex, zeroHash } from "viem";
import { chain, count, ol, read } from "../chain.js";
import { lineChart } from "../charts.js";
import { checkFile } from "../files.js";
import { $, ACCESS, CONTRIBUTION, DATA_TYPE, addr, badge, big, hash, html, num, open, set, table, text } from "../html.js";
import { address, amount, integer, onSubmit, say } from "../ui.js";
import { UserError, send, wallet } from "../wallet.js";

export async function render(el, params) {
  return params[0] ? detail(el, Number(params[0])) : list(el);
}

async function all() {
  const n = await count("Datanets", "datanetCount");
  return Promise.all(Array.from({ length: n }, (_, i) => ol("getDatanet", toHex(i + 1))));
}

function list(el) {
  set(el, html`<h1>Datanets</h1>
    <p class="muted">Community datasets: every contribution is content-addressed and owned by its contributor, curated, and published in versions.</p>
    <input id="search" type="search" placeholder="Search by name, licence, owner or id" aria-label="search Datanets">
    <div id="datanet-list"></div>
    <details id="create"><summary>Create a Datanet</summary>
      <form id="create-form" class="grid">
        <label>Name <input name="name" required maxlength="64"></label>
        <label>Licence <input name="license" value="CC-BY-4.0" required></label>
        <label class="wide">Description <textarea name="description" rows="2"></textarea></label>
        <label>Data type <select name="dataType"><option value="0">text</option><option value="1">image</option><option value="2">audio</option></select></label>
        <label>Access <select name="access"><option value="0">public</option><option value="1">allowlist</option></select></label>
        <label>Contribution fee (OPEN) <input name="fee" value="0" inputmode="decimal"></label>
        <label>Daily bytes per contributor <input name="daily" value="10485760" inputmode="numeric"></label>
        <label class="wide">Curators (addresses, comma-separated) <input name="curators"></label>
        <button type="submit">Create</button><p class="msg" role="status"></p>
      </form></details>`);
  let rows = [];
  const show = () => {
    const q = $("#search").value.trim().toLowerCase();
    const found = rows.filter((d) => !q || [num(d.id), d.name, d.license, d.owner].join(" ").toLowerCase().includes(q));
    set($("#datanet-list"), table(["#", "name", "type", "licence", "access", "owner", "contributions", "accepted", "versions", "fee"],
      found.map((d) => [num(d.id), html`<a href="#/datanets/${num(d.id)}">${d.name}</a>`, DATA_TYPE[num(d.dataType)], d.license,
        ACCESS[num(d.accessPolicy)], addr(d.owner), num(d.contributionCount), num(d.acceptedCount), num(d.versionCount),
        open(d.contributionFee)]), q ? `No Datanet matches "${q}".` : "No Datanets yet: create the first below."));
  };
  $("#search").addEventListener("input", show);
  onSubmit($("#create-form"), async (f, status) => {
    const name = f.get("name").trim();
    if (!name) throw new UserError("Name: give the Datanet a name. Nothing was sent.");
    const curators = f.get("curators").split(",").map((s) => s.trim()).filter(Boolean).map((a) => address(a, "Curators"));
    const fee = amount(f.get("fee"), "Contribution fee");
    const daily = integer(f.get("daily"), "Daily bytes", 1, 2n ** 64n - 1n);
    const description = new TextEncoder().encode(f.get("description"));
    const descriptionHash = description.length ? keccak256(description) : zeroHash;
    const receipt = await send({ module: "Datanets", fn: "createDatanet", status,
      args: [name, descriptionHash, Number(f.get("dataType")), f.get("license").trim(), Number(f.get("access")), fee, daily, curators],
      prepare: () => description.length && ol("putBlob", toHex(description), descriptionHash, true) });
    return `Created in block ${receipt.blockNumber}.`;
  });
  return async () => { rows = await all(); show(); };
}

const previews = new Map();

/** The first characters of a row (text) or its size (binary); `signature` for an allowlist Datanet. */
async function preview(id, h, signature) {
  if (!previews.has(h)) {
    previews.set(h, ol("getBlob", h, toHex(id), ...(signature ? [signature] : [])).then((b) => {
      const t = text(b);
      return t === null ? `(${(b.length - 2) / 2} bytes of binary data)` : t.slice(0, 120);
    }, () => "(not readable here)"));
  }
  return previews.get(h);
}

async function detail(el, id) {
  let d = await ol("getDatanet", toHex(id));
  const description = d.descriptionHash !== zeroHash
    ? await ol("getBlob", d.descriptionHash).then(text, () => null) : null;
  set(el, html`<p><a href="#/datanets">← all Datanets</a></p>
    <h1>${d.name} <span class="muted">#${id}</span></h1>
    ${description ? html`<p>${description}</p>` : ""}
    <div id="facts"></div>
    <section><h2>Growth by version</h2><div id="growth" class="chart"></div><div id="versions"></div></section>
    <section id="curation" hidden><h2>Curate</h2>
      <p class="muted">You are this Datanet's <b id="role"></b>: accept or reject pending contributions, then publish a version.</p>
      <div id="pending"></div>
      <form id="publish-form"><button type="submit">Publish a new version</button><p class="msg" role="status"></p></form>
      <form id="allow-form" class="grid" hidden>
        <label>Account <input name="account" placeholder="0x…"></label>
        <label>Allowlist <select name="allowed"><option value="1">allow to contribute and read</option><option value="0">remove</option></select></label>
        <button type="submit">Update the allowlist</button><p class="msg" role="status"></p></form>
      <p id="curate-msg" class="msg" role="status"></p>
    </section>
    <section><h2>Contribute a file</h2>
      <form id="contribute-form" class="grid">
        <label class="wide">File <input type="file" name="file" required></label>
        <p class="muted wide">Fee: <b>${open(d.contributionFee)}</b>, paid to the owner. The file is stored on this node; its hash goes on chain.</p>
        <button type="submit">Contribute</button><p class="msg" role="status"></p>
      </form></section>
    <section><h2>Contributions</h2><div id="contributions"></div></section>`);

  onSubmit($("#contribute-form"), async (f, status) => {
    const file = f.get("file");
    if (!file || !file.name) throw new UserError("Choose a file first. Nothing was sent.");
    const bytes = new Uint8Array(await file.arrayBuffer());
    d = await ol("getDatanet", toHex(id));
    checkFile(file.name, bytes, num(d.dataType), big(d.dailyByteLimit));
    const contentHash = keccak256(bytes);
    const receipt = await send({ module: "Datanets", fn: "contribute", args: [BigInt(id), contentHash, BigInt(bytes.length)],
      value: BigInt(d.contributionFee), status, prepare: () => ol("putBlob", toHex(bytes), contentHash, false) });
    return `Contributed ${file.name} (${bytes.length} bytes, ${contentHash}) in block ${receipt.blockNumber}; it waits for curation.`;
  });
  onSubmit($("#allow-form"), async (f, status) => {
    const account = address(f.get("account"), "Account");
    const r = await send({ module: "Datanets", fn: "setAllowed", args: [BigInt(id), account, f.get("allowed") === "1"], status });
    return `Allowlist updated in block ${r.blockNumber}.`;
  });
  onSubmit($("#publish-form"), async (f, status) => {
    const receipt = await send({ module: "Datanets", fn: "publishVersion", args: [BigInt(id)], status });
    return `Published in block ${receipt.blockNumber}.`;
  });
  $("#pending").addEventListener("click", async (event) => {
    const reader = event.target.closest("button[data-read]");
    if (reader) {
      const h = reader.dataset.read;
      try {
        // EIP-191 personal message the node checks: node/blobstore.py blob_message
        const signature = await window.ethereum.request({ method: "personal_sign",
          params: [toHex(`openledger ol_getBlob chain ${chain.id} blob ${h}`), wallet.account] });
        reader.replaceWith(Object.assign(document.createElement("span"), { className: "preview", textContent: await preview(id, h, signature) }));
      } catch (e) { say($("#curate-msg"), `Could not read the row: ${e.code === 4001 ? "you declined to sign" : e.message}`, "error"); }
      return;
    }
    const button = event.target.closest("button[data-hash]");
    if (!button) return;
    const msg = $("#curate-msg");
    const row = button.closest("tr");
    button.disabled = true;
    try {
      const score = integer(row.querySelector("input").value, "Score", 0, 100);
      const accept = button.dataset.accept === "1";
      await send({ module: "Datanets", fn: "curate", args: [BigInt(id), button.dataset.hash, accept, Number(score)],
                   status: (t) => say(msg, t, "info") });
      say(msg, `${accept ? "Accepted" : "Rejected"} ${button.dataset.hash.slice(0, 10)}…`, "ok");
    } catch (e) {
      say(msg, e instanceof UserError ? e.message : `Something went wrong: ${e.shortMessage || e.message}`, "error");
      button.disabled = false;
    }
  });

  let pendingKey = null, versionsShown = -1;
  return async () => {
    d = await ol("getDatanet", toHex(id));
    const total = num(d.contributionCount);
    set($("#facts"), html`<dl class="facts">
      <dt>owner</dt><dd>${addr(d.owner)}</dd><dt>data type</dt><dd>${DATA_TYPE[num(d.dataType)]}</dd>
      <dt>access</dt><dd>${ACCESS[num(d.accessPolicy)]}</dd><dt>licence</dt><dd>${d.license}</dd>
      <dt>contribution fee</dt><dd>${open(d.contributionFee)}</dd><dt>daily limit</dt><dd>${num(d.dailyByteLimit)} bytes</dd>
      <dt>contributions</dt><dd id="n-contributions">${total}</dd><dt>accepted</dt><dd>${num(d.acceptedCount)}</dd>
      <dt>versions</dt><dd>${num(d.versionCount)}</dd></dl>`);
    const nv = num(d.versionCount);
    if (nv !== versionsShown) {
      versionsShown = nv;
      const versions = await Promise.all(Array.from({ length: nv }, (_, i) => ol("getVersion", toHex(id), toHex(i + 1))));
      set($("#versions"), table(["version", "rows", "root", "block"], versions.map((v) => [
        `v${num(v.version)}`, num(v.count), hash(v.root), num(v.blockNumber)]), "No version published yet."));
      if (versions.length) {
        lineChart($("#growth"), { x: versions.map((v) => num(v.version)), yLabel: "rows", xLabel: "version",
          series: [{ label: "accepted rows", values: versions.map((v) => num(v.count)) }] });
      } else $("#growth").textContent = "";
    }
    const rows = await ol("getContributions", toHex(id), toHex(Math.max(0, total - 100)), toHex(100));
    set($("#contributions"), table(["#", "content", "contributor", "bytes", "status", "score"], rows.reverse().map((c) => [
      num(c.index), hash(c.contentHash), addr(c.contributor), num(c.size), badge(CONTRIBUTION[num(c.status)]),
      num(c.status) === 1 ? "" : num(c.score)]), "No contributions yet."));

    const me = wallet.account;
    const role = me && (me.toLowerCase() === d.owner.toLowerCase() ? "owner"
      : (await read("Datanets", "isCurator", [BigInt(id), me])) ? "curator" : null);
    $("#curation").hidden = !role;
    if (!role) return;
    $("#role").textContent = role;
    $("#allow-form").hidden = !(role === "owner" && num(d.accessPolicy) === 1);
    const pending = rows.filter((c) => num(c.status) === 1).reverse();
    const key = pending.map((c) => c.contentHash).join();
    if (key === pendingKey) return;
    pendingKey = key;
    const allowlist = num(d.accessPolicy) === 1;
    const texts = await Promise.all(pending.map((c) => (allowlist && !previews.has(c.contentHash) ? null : preview(id, c.contentHash))));
    set($("#pending"), table(["#", "content", "contributor", "preview", "score", ""], pending.map((c, i) => [
      num(c.index), hash(c.contentHash), addr(c.contributor), texts[i] === null
        ? html`<button class="secondary" data-read="${c.contentHash}" title="an allowlist Datanet's rows are served to a signed request">Read (sign)</button>`
        : html`<span class="preview">${texts[i]}</span>`,
      html`<input class="score" value="80" inputmode="numeric" aria-label="score">`,
      html`<button data-hash="${c.contentHash}" data-accept="1">Accept</button> <button data-hash="${c.contentHash}" data-accept="0" class="secondary">Reject</button>`,
    ]), "Nothing waits for curation."));
  };
}
