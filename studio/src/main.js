// The app shell: a hash router over the pages, the block number and wallet in the header, and live
// updates (each new block, polled with eth_blockNumber over HTTP, refreshes the page shown).
import "./style.css";
import { chain, connect } from "./chain.js";
import { $, html, set, short } from "./html.js";
import { UserError, connectWallet, ensureChain, wallet, watchWallet } from "./wallet.js";
import * as datanets from "./pages/datanets.js";
import * as models from "./pages/models.js";
import * as jobs from "./pages/jobs.js";
import * as attribution from "./pages/attribution.js";
import * as validators from "./pages/validators.js";
import * as account from "./pages/account.js";
import * as supply from "./pages/supply.js";

const PAGES = [
  ["datanets", "Datanets", datanets], ["models", "Models", models], ["jobs", "Jobs", jobs],
  ["attribution", "Attribution", attribution], ["validators", "Validators", validators],
  ["account", "Account", account], ["supply", "OPEN supply", supply],
];

let current = { refresh: null, token: 0 };
let refreshing = false;
let again = false;

export function banner(message, kind = "error") {
  const el = $("#banner");
  el.hidden = !message;
  el.className = kind;
  el.textContent = message || "";
}

function showWallet() {
  const button = $("#wallet");
  if (!window.ethereum) { button.textContent = "No wallet"; button.title = "Install an EIP-1193 wallet to sign"; return; }
  if (!wallet.account) { button.textContent = "Connect wallet"; return; }
  const wrong = wallet.chainId !== null && wallet.chainId !== chain.id;
  button.textContent = wrong ? `Wrong network (${wallet.chainId})` : short(wallet.account);
  button.classList.toggle("wrong", wrong);
  if (wrong) banner(`Wrong network: your wallet is on chain ${wallet.chainId}, this node is chain ${chain.id}. Press the wallet button to switch.`);
  else if ($("#banner").textContent.startsWith("Wrong network")) banner("");
}

async function route() {
  const [name = "datanets", ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const page = PAGES.find((p) => p[0] === name) || PAGES[0];
  const el = $("#page");
  const token = ++current.token;
  current.refresh = null;
  if ($("#banner").textContent.startsWith("Update failed")) banner("");
  el.dataset.page = page[0];
  el.dataset.ready = "";
  set($("#nav"), html`${PAGES.map(([id, label]) => html`<a href="#/${id}" class="${id === page[0] ? "on" : ""}">${label}</a>`)}`);
  set(el, html`<p class="muted">Loading…</p>`);
  try {
    const refresh = await page[2].render(el, params.map(decodeURIComponent));
    if (token !== current.token) return;
    current.refresh = refresh || null;
    if (current.refresh) await current.refresh();
    el.dataset.ready = "1";
  } catch (e) {
    if (token !== current.token) return;
    set(el, html`<p class="error">Could not load this page: ${e.shortMessage || e.message}</p>`);
    el.dataset.ready = "1";
  }
}

async function onBlock(n) {
  $("#block").textContent = `block ${n}`;
  await refresh();
}

/** Refresh the page shown (on a new block, or when the wallet's account or network changes); a
 * request that comes while a refresh runs is served by one more refresh after it. */
async function refresh() {
  if (!current.refresh) return;
  if (refreshing) { again = true; return; }
  refreshing = true;
  const token = current.token;
  try {
    do {
      again = false;
      await current.refresh();
      if ($("#banner").textContent.startsWith("Update failed")) banner("");
    } while (again && token === current.token && current.refresh);
  } catch (e) {
    if (token === current.token) banner(`Update failed: ${e.shortMessage || e.message}`); // else the page was left
  } finally { refreshing = false; }
}

async function start() {
  try {
    await connect();
  } catch (e) {
    banner(`Cannot read the chain: ${e.message}`);
    set($("#page"), html`<p class="error">${e.message}</p>`);
    $("#page").dataset.ready = "1";
    return;
  }
  $("#status").title = `chain id ${chain.id}`;
  wallet.listeners.push(showWallet, refresh);
  watchWallet();
  showWallet();
  $("#wallet").addEventListener("click", async () => {
    try {
      await connectWallet();
      await ensureChain();
      banner("");
    } catch (e) { banner(e instanceof UserError ? e.message : String(e.message || e)); }
  });
  window.addEventListener("hashchange", route);
  chain.client.watchBlockNumber({ onBlockNumber: onBlock, emitOnBegin: true, poll: true, pollingInterval: 1000,
                                  onError: () => $("#block").textContent = "node unreachable" });
  await route();
}

start();
