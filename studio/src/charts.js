// Pictures: uPlot (bundled) for values over time or versions; a small SVG for the attribution
// graph (contributions -> adapter -> answers), which is a layered flow, not a chart.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { html } from "./html.js";

const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });
const COLORS = ["#2b6cb0", "#d97706", "#059669", "#9333ea", "#dc2626", "#0891b2"];

/** A line chart in `el`: x values and named series (same length); `time` x axis when timestamps. */
export function lineChart(el, { title, x, series, time = false, stepped = false, yLabel = "", xLabel = "" }) {
  el.innerHTML = "";
  const width = Math.max(260, Math.min(el.clientWidth || 600, 900));
  const opts = {
    title, width, height: 220,
    scales: { x: { time } },
    axes: [time ? {} : { label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, { label: yLabel, size: 80, values: (u, ticks) => ticks.map((v) => compact.format(v)) }],
    series: [{ label: time ? "time" : "x" }, ...series.map((s, i) => ({
      label: s.label, stroke: COLORS[i % COLORS.length], width: 2,
      paths: stepped ? uPlot.paths.stepped({ align: 1 }) : undefined,
      points: { show: x.length < 30 },
    }))],
  };
  return new uPlot(opts, [x, ...series.map((s) => s.values)], el);
}

/** A three-column flow: left nodes -> middle -> right, edges drawn with widths by weight. */
export function flowGraph({ left, middle, right, edges }) {
  const rowH = 34, w = 720, colX = [10, 290, 560], boxW = 150;
  const rows = Math.max(left.length, middle.length, right.length, 1);
  const h = rows * rowH + 40;
  const pos = new Map();
  [left, middle, right].forEach((col, c) => {
    const offset = (rows - col.length) * rowH / 2 + 30;
    col.forEach((n, i) => pos.set(n.id, { x: colX[c], y: offset + i * rowH, n }));
  });
  const maxW = Math.max(1, ...edges.map((e) => e.weight));
  const lines = edges.filter((e) => pos.has(e.from) && pos.has(e.to)).map((e) => {
    const a = pos.get(e.from), b = pos.get(e.to);
    const x1 = a.x + boxW, y1 = a.y + 12, x2 = b.x, y2 = b.y + 12, mx = (x1 + x2) / 2;
    return html`<path d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}" stroke="#2b6cb0" stroke-opacity="0.45"
      stroke-width="${(1 + 9 * e.weight / maxW).toFixed(1)}" fill="none"><title>${e.title || ""}</title></path>`;
  });
  const boxes = [...pos.values()].map(({ x, y, n }) => html`<g class="node ${n.kind}">
    <a href="${n.href || "#"}"><rect x="${x}" y="${y}" width="${boxW}" height="24" rx="5"></rect>
    <text x="${x + 8}" y="${y + 16}">${n.label.length > 22 ? n.label.slice(0, 21) + "…" : n.label}</text>
    <title>${n.title || n.label}</title></a></g>`);
  const heads = ["contributions", "adapter", "answers"].map((t, i) => html`<text class="head" x="${colX[i]}" y="16">${t}</text>`);
  return html`<svg class="flow" viewBox="0 0 ${w} ${h}" role="img" aria-label="attribution graph">${heads}${lines}${boxes}</svg>`;
}

/** A horizontal stacked bar of named parts (bigints), with a legend. */
export function stackBar(parts) {
  const total = parts.reduce((a, p) => a + p.value, 0n) || 1n;
  const pct = (v) => Number(v * 10000n / total) / 100;
  return html`<div class="stack">${parts.map((p, i) => html`<span style="width:${pct(p.value)}%;background:${COLORS[i % COLORS.length]}"
      title="${p.label}"></span>`)}</div>
    <ul class="legend">${parts.map((p, i) => html`<li><i style="background:${COLORS[i % COLORS.length]}"></i>${p.label}
      <b>${p.text}</b> <span class="muted">(${pct(p.value).toFixed(2)}%)</span></li>`)}</ul>`;
}
