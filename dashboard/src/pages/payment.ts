// One payment's page: its whole story in time order (events with their webhook deliveries, PSP
// attempts with routing decisions, charges, refunds, ledger entries) and the capture, cancel and
// refund actions its status allows. The story comes from one GraphQL query (timeline.ts);
// the actions are REST calls.

import { api } from "../api";
import { actionButton, badge, h, money, mount, notice, poll, time, toMinor } from "../dom";
import { PaymentStory, loadStory, timeline } from "./timeline";

const POLL_MS = 3000;
const CANCELABLE = new Set(["requires_payment_method", "requires_confirmation", "requires_action", "requires_capture"]);

export function renderPayment(main: HTMLElement, id: string): () => void {
  const head = h("div", { class: "page-head" }, h("a", { href: "#/payments", class: "back" }, "← Payments"), h("h1", { class: "mono" }, id));
  const summary = h("section", { id: "summary" });
  const actions = h("section", { id: "actions", class: "actions" });
  const story = h("section", { id: "timeline" });
  mount(main, head, summary, actions, story);
  let lastStamp = "";

  async function refresh(force = false): Promise<void> {
    const started = performance.now();
    let data: PaymentStory;
    try {
      data = await loadStory(id);
    } catch (error) {
      mount(story, notice(error instanceof Error ? error.message : String(error), "error"));
      return;
    }
    // Redraw only on change, so a form being filled is not reset by the poll.
    const stamp = JSON.stringify(data);
    if (stamp === lastStamp && !force) return;
    lastStamp = stamp;
    renderSummary(summary, data);
    renderActions(actions, data, () => refresh(true));
    mount(story, h("h2", {}, "Timeline"), timeline(data, () => refresh(true)));
    main.setAttribute("data-render-ms", String(Math.round(performance.now() - started)));
  }

  return poll(() => refresh(), POLL_MS);
}

function renderSummary(el: HTMLElement, { payment: pi, charges, refunds }: PaymentStory): void {
  const refunded = refunds.filter((r) => r.status !== "failed" && r.status !== "canceled").reduce((sum, r) => sum + r.amount, 0);
  const card = charges[0]?.payment_method_details?.card;
  const facts: [string, string | Node][] = [
    ["Amount", money(pi.amount, pi.currency)],
    ["Status", badge(pi.status)],
    ["Received", money(pi.amount_received, pi.currency)],
    ["Capturable", money(pi.amount_capturable, pi.currency)],
    ["Refunded", money(refunded, pi.currency)],
    ["Capture", pi.capture_method],
    ["Method", card ? `${card.brand ?? "card"} •••• ${card.last4 ?? ""}` : pi.payment_method_types.join(", ")],
    ["Created", time(pi.created)],
    ["Customer", pi.customer ?? "—"],
    ["Metadata", Object.entries(pi.metadata).map(([k, v]) => `${k}=${v}`).join(", ") || "—"],
  ];
  if (pi.last_payment_error) facts.push(["Last error", `${pi.last_payment_error.code ?? ""} ${pi.last_payment_error.decline_code ?? ""}: ${pi.last_payment_error.message ?? ""}`]);
  mount(el, h("dl", { class: "facts card" }, facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])));
}

function renderActions(el: HTMLElement, { payment: pi, refunds }: PaymentStory, reload: () => Promise<void>): void {
  const buttons: Node[] = [];
  if (pi.status === "requires_capture") {
    const amount = h("input", { id: "capture-amount", type: "number", min: "0", step: "0.01", placeholder: `${money(pi.amount_capturable, pi.currency)} (all)`, size: 10 });
    buttons.push(
      h("span", { class: "group" }, amount, actionButton("Capture", async () => {
        const minor = toMinor(amount.value, pi.currency);
        await api.post(`/v1/payment_intents/${pi.id}/capture`, minor === null ? {} : { amount_to_capture: minor });
        await reload();
      }, { id: "capture" })),
    );
  }
  if (CANCELABLE.has(pi.status)) {
    buttons.push(actionButton("Cancel", async () => {
      await api.post(`/v1/payment_intents/${pi.id}/cancel`, { cancellation_reason: "requested_by_customer" });
      await reload();
    }, { id: "cancel", class: "danger" }));
  }
  const refunded = refunds.filter((r) => r.status !== "failed" && r.status !== "canceled").reduce((sum, r) => sum + r.amount, 0);
  const refundable = pi.amount_received - refunded;
  if (pi.status === "succeeded" && refundable > 0) {
    const amount = h("input", { id: "refund-amount", type: "number", min: "0", step: "0.01", placeholder: `${money(refundable, pi.currency)} (all)`, size: 10 });
    buttons.push(
      h("span", { class: "group" }, amount, actionButton("Refund", async () => {
        const minor = toMinor(amount.value, pi.currency);
        await api.post("/v1/refunds", minor === null ? { payment_intent: pi.id } : { payment_intent: pi.id, amount: minor });
        await reload();
      }, { id: "refund" })),
    );
  }
  mount(el, buttons.length ? buttons : h("span", { class: "muted" }, "No action applies to a payment in this state."));
}
