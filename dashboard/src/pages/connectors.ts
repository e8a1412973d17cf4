// Connectors: health and circuit state (polled), the simulator's fault switches (admin key:
// POST /v1/connectors/{id} changes every merchant's simulator) and the merchant's routing rules,
// edited as JSON and validated by the API itself (POST /v1/routing answers with the param at fault).

import { ApiError, List, api, keys } from "../api";
import { actionButton, badge, h, mount, notice, poll, table, time } from "../dom";

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
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Connectors")), health, h("h2", {}, "Simulator fault switches"), switches, h("h2", {}, "Routing rules"), routing);
  let drawnSwitches = false;

  async function refresh(): Promise<void> {
    let list: List<Connector>;
    try {
      list = await api.get<List<Connector>>("/v1/connectors");
    } catch (error) {
      mount(health, notice(error instanceof Error ? error.message : String(error), "error"));
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
    // The switch forms are drawn once: a poll must not undo what someone is typing.
    if (!drawnSwitches) {
      drawnSwitches = true;
      renderSwitches(switches, list.data.filter((c) => c.simulator), refresh);
    }
  }

  void renderRouting(routing);
  return poll(refresh, 3000);
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
    mount(el, notice(error instanceof Error ? error.message : String(error), "error"));
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
