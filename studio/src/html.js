// Escaping templates: every value read from the chain (names, licences, prompts, outputs) is
// someone's input, so it is escaped unless a page wraps trusted markup in raw().
import { formatEther } from "viem";

class Raw {
  constructor(s) { this.s = s; }
  toString() { return this.s; }
}
export const raw = (s) => new Raw(s);

function esc(v) {
  if (v instanceof Raw) return v.s;
  if (Array.isArray(v)) return v.map(esc).join("");
  if (v === null || v === undefined || v === false) return "";
  return String(v).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += esc(v) + strings[i + 1]; });
  return new Raw(out);
}

export function set(el, markup) { el.innerHTML = markup.s; return el; }

export const $ = (sel, root = document) => root.querySelector(sel);

// -- numbers, addresses, hashes -----------------------------------------------------------
export const big = (hex) => (typeof hex === "bigint" ? hex : BigInt(hex));
export const num = (hex) => Number(big(hex));

/** An amount of OPEN in words people read: at most 4 decimals, thousands grouped. */
export function open(wei) {
  const text = formatEther(big(wei));
  const [whole, frac = ""] = text.split(".");
  const grouped = BigInt(whole).toLocaleString("en-US");
  const f = frac.slice(0, 4).replace(/0+$/, "");
  return `${grouped}${f ? "." + f : ""} OPEN`;
}

export const short = (h) => (h && h.length > 14 ? `${h.slice(0, 8)}…${h.slice(-4)}` : h);
export const ppm = (v) => `${(num(v) / 10_000).toFixed(2)}%`;

export const addr = (a) => html`<a class="mono" href="#/account/${a}" title="${a}">${short(a)}</a>`;
export const hash = (h) => html`<span class="mono" title="${h}">${short(h)}</span>`;

export const CONTRIBUTION = { 1: "pending", 2: "accepted", 3: "rejected" };
export const JOB = { 1: "requested", 2: "submitted", 3: "succeeded", 4: "failed" };
export const PROOF = { 0: "none", 1: "posted", 2: "paid", 3: "settled without a proof" };
export const DATA_TYPE = { 0: "text", 1: "image", 2: "audio" };
export const ACCESS = { 0: "public", 1: "allowlist" };
export const ROLE = { 0: "contributor", 1: "model owner", 2: "validator", 3: "treasury" };
export const METHOD = { 1: "graddot-v1", 2: "datainf-v1", 3: "span-v1", 4: "semantic-v1" };

export const badge = (word) => html`<span class="badge ${word.replace(/\s/g, "-")}">${word}</span>`;

export function table(headers, rows, empty = "Nothing yet.") {
  if (!rows.length) return html`<p class="muted">${empty}</p>`;
  return html`<div class="scroll"><table><thead><tr>${headers.map((h) => html`<th>${h}</th>`)}</tr></thead>
    <tbody>${rows.map((r) => html`<tr>${r.map((c) => html`<td>${c}</td>`)}</tr>`)}</tbody></table></div>`;
}

/** Text from the bytes of a blob (hex), or null when they are not UTF-8. */
export function text(hexData) {
  try {
    const bytes = Uint8Array.from(hexData.slice(2).match(/../g) || [], (b) => parseInt(b, 16));
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch { return null; }
}
