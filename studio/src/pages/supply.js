// OPEN supply: circulating + reserve + locked + burned = the fixed total, now and over time.
import { chain, ol, read, samples } from "../chain.js";
import { lineChart, stackBar } from "../charts.js";
import { $, big, html, open, set } from "../html.js";

export async function render(el) {
  set(el, html`<h1>OPEN supply</h1>
    <p class="muted">The total is fixed at genesis; block rewards are released from the ecosystem reserve, team and investor
    allocations vest from the locked account, and base fees are burned.</p>
    <div id="supply"></div><section><h2>Over time</h2><div id="supply-chart" class="chart"></div></section>`);
  let charted = 0;
  return async () => {
    const s = await ol("getSupply");
    set($("#supply"), html`<dl class="facts big"><dt>total</dt><dd id="total">${open(s.total)}</dd>
      <dt>circulating</dt><dd id="circulating">${open(s.circulating)}</dd><dt>reserve</dt><dd>${open(s.reserve)}</dd>
      <dt>locked (vesting)</dt><dd>${open(s.locked)}</dd><dt>burned</dt><dd>${open(s.burned)}</dd>
      <dt>released from reserve</dt><dd>${open(s.released)}</dd></dl>
      ${stackBar([["circulating", s.circulating], ["reserve", s.reserve], ["locked", s.locked], ["burned", s.burned]]
        .map(([label, v]) => ({ label, value: big(v), text: open(v) })))}`);
    const head = Number(await chain.client.getBlockNumber());
    if (head - charted < 10 && charted) return;
    charted = head;
    const blocks = await samples(40);
    const [parts, times] = await Promise.all([Promise.all(blocks.map((b) => read("Economics", "supply", [], BigInt(b)))),
      Promise.all(blocks.map((b) => chain.client.getBlock({ blockNumber: BigInt(b) }).then((x) => Number(x.timestamp))))]);
    const total = big(s.total);
    const m = (wei) => Number(wei / 10n ** 12n) / 1e6;
    lineChart($("#supply-chart"), { x: times, time: true, yLabel: "OPEN", series: [
      { label: "circulating", values: parts.map(([r, l, b]) => m(total - r - l - b)) },
      { label: "reserve", values: parts.map(([r]) => m(r)) }, { label: "locked", values: parts.map(([, l]) => m(l)) },
      { label: "burned", values: parts.map(([, , b]) => m(b)) }] });
  };
}
