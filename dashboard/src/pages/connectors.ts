// Connectors: health and circuit state (polled), the simulator's fault switches (admin key:
// POST /v1/connectors/{id} changes every merchant's simulator) and the merchant's routing rules,
// edited as JSON and validated by the API itself (POST /v1/routing answers with the param at fault).

import { ApiError, List, api, keys } from "../api";
import type { ConnectorAlert } from "./alerts";
import { actionButton, badge, errorNotice, h, mount, notice, poll, table, time } from "../dom";

interface Simulator {
  enabled?: boolean;
  error_rate: number;
  timeout_rate: number;
  decline_rate: number;
  latency_ms_min: number;
  latency_ms_max: number;
  fail_next_calls: number;
  fail_with: string;
}

interface Connector {
  id: string;
  kind: string;
  enabled: boolean;
  health: string;
  priority: number;
  weight: number;
  circuit: { state: string; opened_at: number | null; window_seconds: number; calls: number; failures: number; failure_rate: number };
  simulator?: Simulator;
}

/** One move of a connector's circuit (GET /v1/connectors/{id}/circuit_history). */
interface CircuitMove {
  connector: string;
  from: string;
  to: string;
  at_ms: number;
  reason: string;
  calls?: number;
  failures?: number;
}

interface Routing {
  custom: boolean;
  connectors: Record<string, unknown>[];
  circuit_breaker: Record<string, number>;
}

const RATES = ["error_rate", "timeout_rate", "decline_rate"] as const;

export function renderConnectors(main: HTMLElement): () => void {
  const health = h("section", { id: "health" });
  const switches = h("section", { id: "switches" });
  const routing = h("section", { id: "routing" });
  const alerts = h("section", { id: "alert-history" });
  const moves = h("section", { id: "circuit-history" });
  const settings = h("section", { id: "alert-settings" });
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Connectors")), health, h("h2", {}, "Circuit history"), moves, h("h2", {}, "Failure-spike alerts"), settings, alerts, h("h2", {}, "Simulator fault switches"), switches, h("h2", {}, "Routing rules"), routing);
  let drawnSwitches = false;

  async function refresh(): Promise<void> {
    let list: List<Connector>;
    try {
      list = await api.get<List<Connector>>("/v1/connectors");
    } catch (error) {
      mount(health, errorNotice(error));
      return;
    }
    mount(
      health,
      table(
        ["Connector", "Kind", "Health", "Circuit", `Calls (window)`, "Failures", "Failure rate", "Opened"],
        list.data.map((c) => [h("strong", {}, c.id), c.kind, badge(c.health), badge(c.circuit.state), c.circuit.calls, c.circuit.failures, `${(c.circuit.failure_rate * 100).toFixed(1)}%`, time(c.circuit.opened_at) || "—"]),
        { id: "connectors", class: "grid" },
      ),
    );
    health.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-connector", list.data[i].id));
    await renderCircuitHistory(moves, list.data.map((c) => c.id));
    // The switch forms are drawn once: a poll must not undo what someone is typing.
    if (!drawnSwitches) {
      drawnSwitches = true;
      renderSwitches(switches, list.data.filter((c) => c.simulator), refresh);
    }
  }

  void renderRouting(routing);
  void renderAlertSettings(settings);
  return poll(async () => {
    await refresh();
    await renderAlertHistory(alerts);
  }, 3000);
}

/** Every connector's latest circuit moves, merged newest first: when it opened, half-opened
 * and closed, and why (one small read per connector). */
async function renderCircuitHistory(el: HTMLElement, connectors: string[]): Promise<void> {
  let lists: List<CircuitMove>[];
  try {
    lists = await Promise.all(connectors.map((id) => api.get<List<CircuitMove>>(`/v1/connectors/${id}/circuit_history`, { limit: 10 })));
  } catch (error) {
    mount(el, errorNotice(error));
    return;
  }
  const all = lists.flatMap((l) => l.data).sort((a, b) => b.at_ms - a.at_ms).slice(0, 20);
  if (!all.length) {
    mount(el, notice("No circuit has moved: every connector's circuit has stayed closed."));
    return;
  }
  mount(
    el,
    table(
      ["When", "Connector", "Move", "Why"],
      all.map((m) => [time(Math.floor(m.at_ms / 1000)), h("strong", {}, m.connector), h("span", {}, badge(m.from), " → ", badge(m.to)), m.reason]),
      { id: "circuit-moves", class: "grid" },
    ),
  );
  el.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-move", `${all[i].connector}:${all[i].to}`));
}

function renderSwitches(el: HTMLElement, simulators: Connector[], refresh: () => Promise<void>): void {
  if (!keys.admin()) {
    mount(el, notice("Sign in with the sandbox admin key as well to switch simulator faults (they apply to every merchant)."));
    return;
  }
  mount(
    el,
    simulators.map((c) => {
      const sim = c.simulator as Simulator;
      const inputs = Object.fromEntries(
        RATES.map((name) => [name, h("input", { type: "number", name, min: "0", max: "1", step: "0.05", value: String(sim[name]), size: 4 })]),
      ) as Record<(typeof RATES)[number], HTMLInputElement>;
      const latencyMin = h("input", { type: "number", name: "latency_ms_min", min: "0", max: "60000", value: String(sim.latency_ms_min), size: 5 });
      const latencyMax = h("input", { type: "number", name: "latency_ms_max", min: "0", max: "60000", value: String(sim.latency_ms_max), size: 5 });
      const enabled = h("input", { type: "checkbox", name: "enabled", checked: c.enabled });
      return h(
        "form",
        { class: "switch card", "data-connector": c.id, onsubmit: (e: Event) => e.preventDefault() },
        h("strong", {}, c.id),
        h("label", {}, enabled, " enabled"),
        RATES.map((name) => h("label", {}, `${name.replace("_rate", "")} rate `, inputs[name])),
        h("label", {}, "latency ", latencyMin, "–", latencyMax, " ms"),
        actionButton("Apply", async () => {
          await api.adminPost(`/v1/connectors/${c.id}`, {
            enabled: enabled.checked,
            ...Object.fromEntries(RATES.map((name) => [name, inputs[name].value])),
            latency_ms_min: latencyMin.value,
            latency_ms_max: latencyMax.value,
          });
          await refresh();
        }, { class: "apply" }),
        actionButton("All faults off", async () => {
          await api.adminPost(`/v1/connectors/${c.id}`, { enabled: true, error_rate: 0, timeout_rate: 0, decline_rate: 0, fail_next_calls: 0 });
          RATES.forEach((name) => (inputs[name].value = "0"));
          enabled.checked = true;
          await refresh();
        }, { class: "secondary reset" }),
      );
    }),
  );
}

async function renderRouting(el: HTMLElement): Promise<void> {
  let current: Routing;
  try {
    current = await api.get<Routing>("/v1/routing");
  } catch (error) {
    mount(el, errorNotice(error));
    return;
  }
  const text = h("textarea", { id: "routing-json", rows: 18, cols: 90, spellcheck: "false" });
  text.value = JSON.stringify({ connectors: current.connectors, circuit_breaker: current.circuit_breaker }, null, 2);
  const message = h("div", { id: "routing-message", role: "status" });
  const save = actionButton("Save routing", async () => {
    message.replaceChildren();
    let parsed: { connectors?: unknown; circuit_breaker?: unknown };
    try {
      parsed = JSON.parse(text.value);
    } catch (error) {
      message.append(notice(`Not JSON: ${(error as Error).message}`, "error"));
      return;
    }
    if (!parsed || !Array.isArray(parsed.connectors) || parsed.connectors.length === 0) {
      message.append(notice("connectors must be a non-empty list.", "error"));
      return;
    }
    try {
      await api.post("/v1/routing", { connectors: parsed.connectors, circuit_breaker: parsed.circuit_breaker });
    } catch (error) {
      const where = error instanceof ApiError && error.error.param ? ` (${error.error.param})` : "";
      message.append(notice(`${(error as Error).message}${where}`, "error"));
      return;
    }
    message.append(notice("Saved: new payments route with these rules."));
  }, { id: "save-routing" });
  const reset = actionButton("Back to the defaults", async () => {
    await api.post("/v1/routing", { use_defaults: true });
    await renderRouting(el);
  }, { class: "secondary" });
  mount(el, h("p", { class: "muted" }, current.custom ? "This merchant has its own routing rules." : "This merchant uses the sandbox's default routing rules."), text, h("div", { class: "row" }, save, reset), message);
}

interface AlertSettings {
  enabled: boolean;
  threshold: number;
  window_seconds: number;
  minimum_calls: number;
}

async function renderAlertHistory(el: HTMLElement): Promise<void> {
  const alerts = await api.get<List<ConnectorAlert>>("/v1/alerts", { limit: 10 });
  mount(
    el,
    alerts.data.length
      ? table(
          ["Alert", "Connector", "Status", "Success rate", "Calls", "Raised", "Resolved"],
          alerts.data.map((a) => [h("code", {}, a.id), h("strong", {}, a.connector), badge(a.status), `${(a.success_rate * 100).toFixed(0)}% (< ${(a.threshold * 100).toFixed(0)}%)`, a.attempted, time(a.created), time(a.resolved_at) || "—"]),
          { class: "grid", id: "alerts-table" },
        )
      : h("p", { class: "muted" }, "No alert so far."),
  );
}

async function renderAlertSettings(el: HTMLElement): Promise<void> {
  const current = await api.get<AlertSettings>("/v1/alert_settings");
  const enabled = h("input", { type: "checkbox", name: "enabled", checked: current.enabled });
  const threshold = h("input", { type: "number", name: "threshold", min: "0", max: "100", step: "1", value: String(Math.round(current.threshold * 100)) });
  const windowMinutes = h("input", { type: "number", name: "window_minutes", min: "1", max: "60", value: String(current.window_seconds / 60) });
  const minimum = h("input", { type: "number", name: "minimum_calls", min: "1", max: "10000", value: String(current.minimum_calls) });
  const message = h("span", { class: "muted", id: "alert-settings-message" });
  mount(
    el,
    h(
      "form",
      { class: "alert-settings card", onsubmit: (e: Event) => e.preventDefault() },
      h("label", {}, enabled, " alert when a connector's success rate is under "),
      h("label", {}, threshold, " %"),
      h("label", {}, "over the last ", windowMinutes, " min"),
      h("label", {}, "with at least ", minimum, " calls"),
      actionButton("Save alert rule", async () => {
        const saved = await api.post<AlertSettings>("/v1/alert_settings", {
          enabled: enabled.checked,
          threshold: Number(threshold.value) / 100,
          window_seconds: Number(windowMinutes.value) * 60,
          minimum_calls: minimum.value,
        });
        message.textContent = `Saved: under ${Math.round(saved.threshold * 100)}% over ${saved.window_seconds / 60} min.`;
      }, { id: "save-alert-settings" }),
      message,
    ),
  );
}
