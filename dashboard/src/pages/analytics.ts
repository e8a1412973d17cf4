// Analytics: one GET /v1/analytics per range (computed server-side from counters, so its cost
// does not grow with the number of payments), drawn with uPlot: success rate over time by
// connector and by method, volume and refunds, latency percentiles and decline reasons.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api } from "../api";
import { errorNotice, h, money, mount, table } from "../dom";

interface Summary {
  calls: number;
  attempted: number;
  succeeded: number;
  success_rate: number | null;
  outcomes: Record<string, number>;
  latency_ms: { p50: number | null; p90: number | null; p99: number | null };
  reasons: Record<string, number>;
  volume: Record<string, number>;
}

interface Group {
  total: Summary;
  success_rate: (number | null)[];
  attempted: number[];
}

interface Report {
  interval: "hour" | "day";
  start: number;
  end: number;
  buckets: number[];
  total: Summary;
  by_connector: Record<string, Group>;
  by_method: Record<string, Group>;
  volume: Record<string, number[]>;
  refunds: { count: number[]; volume: Record<string, number[]> };
}

const COLORS = ["#635bff", "#0e9f6e", "#e3a008", "#e02424", "#0891b2", "#9061f9"];
const RANGES: [string, number][] = [["Last 24 hours", 86400], ["Last 7 days", 7 * 86400], ["Last 30 days", 30 * 86400]];

export function renderAnalytics(main: HTMLElement): () => void {
  const body = h("div", { id: "analytics-body" });
  const timing = h("span", { class: "muted", id: "analytics-timing" });
  const range = h("select", { id: "range" }, RANGES.map(([label, seconds]) => h("option", { value: String(seconds) }, label)));
  range.addEventListener("change", () => void load());
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Analytics"), range, timing), body);
  const charts: uPlot[] = [];

  async function load(): Promise<void> {
    const started = performance.now();
    const end = Math.floor(Date.now() / 1000);
    let report: Report;
    try {
      report = await api.get<Report>("/v1/analytics", { created: { gte: end - Number(range.value), lte: end } });
    } catch (error) {
      mount(body, errorNotice(error));
      return;
    }
    const fetched = performance.now();
    charts.splice(0).forEach((c) => c.destroy());
    draw(body, report, charts);
    const drawn = performance.now();
    timing.textContent = `API ${Math.round(fetched - started)} ms · render ${Math.round(drawn - fetched)} ms · ${report.buckets.length} ${report.interval} buckets`;
    timing.setAttribute("data-api-ms", String(Math.round(fetched - started)));
    timing.setAttribute("data-render-ms", String(Math.round(drawn - fetched)));
  }

  void load();
  return () => charts.splice(0).forEach((c) => c.destroy());
}

function percent(value: number | null | undefined): string {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)}%`;
}

function draw(body: HTMLElement, report: Report, charts: uPlot[]): void {
  const t = report.total;
  const currency = Object.keys(report.volume)[0] ?? "usd";
  const refunded = (report.refunds.volume[currency] ?? []).reduce((a, b) => a + b, 0);
  const volume = (report.volume[currency] ?? []).reduce((a, b) => a + b, 0);
  const kpis = h(
    "div",
    { class: "kpis" },
    [
      ["PSP calls", String(t.calls)],
      ["Success rate", percent(t.success_rate)],
      [`Volume (${currency.toUpperCase()})`, money(volume, currency)],
      [`Refunds (${currency.toUpperCase()})`, `${report.refunds.count.reduce((a, b) => a + b, 0)} · ${money(refunded, currency)}`],
      ["p50 / p99 latency", `${t.latency_ms.p50 ?? "—"} / ${t.latency_ms.p99 ?? "—"} ms`],
    ].map(([label, value]) => h("div", { class: "kpi card" }, h("div", { class: "muted" }, label), h("div", { class: "kpi-value" }, value))),
  );
  const rateByConnector = h("div", { class: "chart card", id: "chart-connector" }, h("h3", {}, "Success rate by connector"));
  const rateByMethod = h("div", { class: "chart card", id: "chart-method" }, h("h3", {}, "Success rate by method"));
  const volumeChart = h("div", { class: "chart card", id: "chart-volume" }, h("h3", {}, `Volume and refunds (${currency.toUpperCase()})`));
  const latency = h(
    "div",
    { class: "chart card" },
    h("h3", {}, "Latency per connector (ms)"),
    table(
      ["Connector", "Calls", "Success", "p50", "p90", "p99"],
      Object.entries(report.by_connector).map(([name, g]) => [h("strong", {}, name), g.total.calls, percent(g.total.success_rate), g.total.latency_ms.p50 ?? "—", g.total.latency_ms.p90 ?? "—", g.total.latency_ms.p99 ?? "—"]),
      { class: "grid", id: "latency" },
    ),
    h("p", { class: "legend-note" }, "Percentiles are the upper edge of a fixed latency bin (10, 25, 50, 100, 250 ms ...)."),
  );
  const reasons = Object.entries(t.reasons);
  const reasonsCard = h(
    "div",
    { class: "chart card" },
    h("h3", {}, "Decline and failure reasons"),
    reasons.length ? table(["Reason", "Calls"], reasons.map(([reason, n]) => [h("code", {}, reason), n]), { class: "grid", id: "reasons" }) : h("p", { class: "muted" }, "No declines or failures in this range."),
  );
  mount(body, kpis, h("div", { class: "charts" }, rateByConnector, rateByMethod, volumeChart, latency, reasonsCard));
  const x = report.buckets;
  charts.push(lineChart(rateByConnector, x, report.by_connector, (g) => g.success_rate.map((v) => (v === null ? null : v * 100)), "%"));
  charts.push(lineChart(rateByMethod, x, report.by_method, (g) => g.success_rate.map((v) => (v === null ? null : v * 100)), "%"));
  const major = (series: number[] | undefined) => (series ?? x.map(() => 0)).map((v) => v / 100);
  charts.push(
    new uPlot(
      {
        width: 560,
        height: 220,
        series: [{}, { label: "volume", stroke: COLORS[0], fill: "rgba(99,91,255,0.12)" }, { label: "refunds", stroke: COLORS[3] }],
        axes: [{}, { size: 60 }],
      },
      [x, major(report.volume[currency]), major(report.refunds.volume[currency])],
      volumeChart,
    ),
  );
}

function lineChart(el: HTMLElement, x: number[], groups: Record<string, Group>, values: (g: Group) => (number | null)[], unit: string): uPlot {
  const names = Object.keys(groups);
  return new uPlot(
    {
      width: 560,
      height: 220,
      scales: { y: { range: [0, 100] } },
      series: [{}, ...names.map((name, i) => ({ label: name, stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true, points: { show: true, size: 5 }, value: (_: uPlot, v: number | null) => (v === null ? "—" : `${v.toFixed(1)}${unit}`) }))],
      axes: [{}, { size: 50, values: (_: uPlot, ticks: number[]) => ticks.map((v) => `${v}${unit}`) }],
    },
    [x, ...names.map((name) => values(groups[name]))] as uPlot.AlignedData,
    el,
  );
}
