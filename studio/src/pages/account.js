// An account: balance, my contributions and their status, my earnings over time by source.
import { isAddress, toHex } from "viem";
import { chain, logs, ol, read, samples } from "../chain.js";
import { lineChart } from "../charts.js";
import { $, CONTRIBUTION, badge, hash, html, num, open, set, table } from "../html.js";
import { wallet } from "../wallet.js";
import { rewardSources } from "./validators.js";

const SOURCES = ["contributor", "model owner", "validator work", "block rewards"];

export async function render(el, params) {
  const who = params[0] || wallet.account;
  set(el, html`<h1>Account</h1>
    <form id="lookup" class="inline"><input name="address" placeholder="0x… address" value="${who || ""}" aria-label="address">
      <button type="submit">Show</button></form>
    ${who && !isAddress(who) ? html`<p class="error">"${who}" is not an address (0x and 40 hex digits).</p>` : ""}
    ${who && isAddress(who) ? html`<div id="summary"></div>
      <section><h2>Earnings over time, by source</h2><div id="earnings" class="chart"></div><div id="sources"></div></section>
      <section><h2>Contributions</h2><div id="my-contributions"></div></section>`
    : html`<p class="muted">Connect a wallet or type an address to see its contributions and earnings.</p>`}`);
  $("#lookup").addEventListener("submit", (e) => { e.preventDefault(); location.hash = `#/account/${new FormData(e.target).get("address").trim()}`; });
  if (!who || !isAddress(who)) return null;
  let chartedTotal = null;
  return async () => {
    const [balance, rewards, contributed] = await Promise.all([chain.client.getBalance({ address: who }), ol("getRewards", who),
      logs("Datanets", "Contributed", { contributor: who })]);
    set($("#summary"), html`<dl class="facts"><dt>address</dt><dd class="mono">${who}</dd><dt>balance</dt><dd>${open(balance)}</dd>
      <dt>rewards (all time)</dt><dd id="rewards-total">${open(rewards.rewards)}</dd>
      <dt>vesting</dt><dd>${open(rewards.vesting.total)} (claimable ${open(rewards.vesting.claimable)})</dd>
      <dt>unbonding</dt><dd>${open(rewards.unbonding.amount)}</dd></dl>`);
    const records = await Promise.all(contributed.map((c) => ol("getContribution", toHex(c.datanetId), c.contentHash).catch(() => null)));
    set($("#my-contributions"), table(["Datanet", "content", "bytes", "status", "score", "block"], contributed.map((c, i) => [
      html`<a href="#/datanets/${c.datanetId}">${c.datanetId}</a>`, hash(c.contentHash), Number(c.size),
      records[i] ? badge(CONTRIBUTION[num(records[i].status)]) : "?", records[i] && num(records[i].status) !== 1 ? num(records[i].score) : "",
      Number(c.blockNumber)]).reverse(), "No contributions from this account."));
    if (chartedTotal === rewards.rewards) return;
    chartedTotal = rewards.rewards;
    const now = await rewardSources(who);
    set($("#sources"), table(["source", "earned"], SOURCES.map((s) => [s, open(now[s])])));
    const blocks = await samples(40);
    const paid = await logs("Attribution", "RewardPaid", { account: who });
    const [totals, times] = await Promise.all([Promise.all(blocks.map((b) => read("Economics", "rewardsOf", [who], BigInt(b)))),
      Promise.all(blocks.map((b) => chain.client.getBlock({ blockNumber: BigInt(b) }).then((x) => Number(x.timestamp))))]);
    const roles = ["contributor", "model owner", "validator work"];
    const series = roles.map((label, role) => ({ label, values: blocks.map((b) => toOpen(paid.filter((p) => p.role === role
      && p.blockNumber <= BigInt(b)).reduce((a, p) => a + p.amount, 0n))) }));
    series.push({ label: "block rewards", values: blocks.map((b, i) => toOpen(totals[i] - paid.filter((p) => p.blockNumber <= BigInt(b))
      .reduce((a, p) => a + p.amount, 0n))) });
    lineChart($("#earnings"), { x: times, time: true, yLabel: "OPEN", stepped: true, series });
  };
}

const toOpen = (wei) => Number(wei / 10n ** 12n) / 1e6;
