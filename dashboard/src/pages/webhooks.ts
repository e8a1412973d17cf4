// Webhooks: the merchant's endpoints (create, edit, disable, roll secret, delete), each one's
// deliveries with their attempts and a resend button, and "retry every failed one since".

import { List, Delivery, api, keys } from "../api";
import { actionButton, badge, errorNotice, h, mount, notice } from "../dom";
import { deliveryList } from "./timeline";

interface Endpoint {
  id: string;
  url: string;
  status: string;
  description: string | null;
  enabled_events: string[];
  created: number;
  secret?: string;
}

function events(text: string): string[] {
  return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
}

export function renderWebhooks(main: HTMLElement): () => void {
  const list = h("section", { id: "endpoints" });
  const secretNote = h("div", { id: "secret-note" });
  const url = h("input", { name: "url", type: "url", placeholder: "https://example.com/webhook", size: 40, required: true });
  const enabled = h("input", { name: "enabled_events", value: "*", size: 40, title: "* or event types separated by commas" });
  const create = h(
    "form",
    { class: "card row", id: "create-endpoint", onsubmit: (e: Event) => e.preventDefault() },
    h("label", {}, "URL ", url),
    h("label", {}, "Events ", enabled),
    actionButton("Add endpoint", async () => {
      const made = await api.post<Endpoint>("/v1/webhook_endpoints", { url: url.value, enabled_events: events(enabled.value) });
      showSecret(secretNote, made);
      url.value = "";
      await draw();
    }, { id: "add-endpoint" }),
  );
  const dlq = h("section", { id: "dlq" });
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Webhooks")), create, secretNote, dlq, list);
  void renderDeadLetters(dlq);

  async function draw(): Promise<void> {
    let page: List<Endpoint>;
    try {
      page = await api.get<List<Endpoint>>("/v1/webhook_endpoints", { limit: 100 });
    } catch (error) {
      mount(list, errorNotice(error));
      return;
    }
    mount(list, page.data.length ? page.data.map((e) => endpointCard(e, draw, secretNote)) : notice("No endpoints yet."));
  }

  void draw();
  return () => undefined;
}

function showSecret(el: HTMLElement, endpoint: Endpoint): void {
  if (!endpoint.secret) return;
  mount(el, h("div", { class: "notice notice-info" }, `Signing secret of ${endpoint.id} (shown once): `, h("code", { id: "new-secret" }, endpoint.secret)));
}

function endpointCard(endpoint: Endpoint, redraw: () => Promise<void>, secretNote: HTMLElement): HTMLElement {
  const deliveries = h("div", { class: "endpoint-deliveries" });
  const url = h("input", { name: "url", value: endpoint.url, size: 40 });
  const enabled = h("input", { name: "enabled_events", value: endpoint.enabled_events.join(", "), size: 40 });
  const description = h("input", { name: "description", value: endpoint.description ?? "", size: 30 });
  const since = h("input", { type: "datetime-local", name: "since" });
  const disabled = endpoint.status === "disabled";

  async function loadDeliveries(): Promise<void> {
    const page = await api.get<List<Delivery>>(`/v1/webhook_endpoints/${endpoint.id}/deliveries`, { limit: 20 });
    mount(deliveries, page.data.length ? deliveryList(page.data, loadDeliveries) : h("p", { class: "muted" }, "No deliveries yet."));
  }
  void loadDeliveries().catch((error) => mount(deliveries, notice(String(error), "error")));

  return h(
    "div",
    { class: "card endpoint", "data-endpoint": endpoint.id },
    h("div", { class: "row" }, h("strong", { class: "mono" }, endpoint.id), badge(endpoint.status)),
    h(
      "form",
      { class: "row", onsubmit: (e: Event) => e.preventDefault() },
      h("label", {}, "URL ", url),
      h("label", {}, "Events ", enabled),
      h("label", {}, "Description ", description),
      actionButton("Save", async () => {
        await api.post(`/v1/webhook_endpoints/${endpoint.id}`, { url: url.value, enabled_events: events(enabled.value), description: description.value });
        await redraw();
      }),
    ),
    h(
      "div",
      { class: "row" },
      actionButton(disabled ? "Enable" : "Disable", async () => {
        await api.post(`/v1/webhook_endpoints/${endpoint.id}`, { disabled: !disabled });
        await redraw();
      }),
      actionButton("Roll secret", async () => {
        // The old secret keeps signing for a day, so receivers switch without losing events.
        showSecret(secretNote, await api.post<Endpoint>(`/v1/webhook_endpoints/${endpoint.id}/roll_secret`, { expires_in: 86400 }));
      }),
      h("label", {}, "Retry failed since ", since),
      actionButton("Retry failed", async () => {
        const at = since.value ? Math.floor(Date.parse(since.value) / 1000) : Math.floor(Date.now() / 1000) - 86400;
        await api.post(`/v1/webhook_endpoints/${endpoint.id}/resend`, { since: at });
        await loadDeliveries();
      }),
      actionButton("Delete", async () => {
        if (!confirm(`Delete ${endpoint.url}? Its deliveries stop.`)) return;
        await api.del(`/v1/webhook_endpoints/${endpoint.id}`);
        await redraw();
      }, { class: "danger" }),
    ),
    h("h3", {}, "Recent deliveries"),
    deliveries,
  );
}

interface DeadLetters {
  dead_lettered: number | null;
  queued: number;
  moved?: number;
}

/** The dead-letter queue is every merchant's: the admin key reads and redrives it. */
async function renderDeadLetters(el: HTMLElement): Promise<void> {
  if (!keys.admin()) {
    mount(el, h("p", { class: "muted" }, "Sign in with the admin key as well to see and redrive the dead-letter queue."));
    return;
  }
  const state = await api.adminGet<DeadLetters>("/v1/sandbox/webhook_dlq");
  const line = (s: DeadLetters) => `Dead-letter queue: ${s.dead_lettered ?? "—"} message(s) · ${s.queued} queued for delivery${s.moved !== undefined ? ` · ${s.moved} moved back` : ""}`;
  const text = h("span", { id: "dlq-state" }, line(state));
  mount(
    el,
    h(
      "div",
      { class: "card row" },
      text,
      actionButton("Redrive", async () => {
        text.textContent = line(await api.adminPost<DeadLetters>("/v1/sandbox/webhook_dlq/redrive", { limit: 100 }));
      }, { id: "redrive" }),
    ),
  );
}
