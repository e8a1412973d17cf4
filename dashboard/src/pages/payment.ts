// One payment's page: its whole story in time order (events with their webhook deliveries, PSP
// attempts with routing decisions, charges, refunds, ledger entries) and the capture, cancel and
// refund actions its status allows. The story comes from one GraphQL query (timeline.ts);
// the actions are REST calls, and so is the list of its disputes (when a charge is disputed).

import { Dispute, List, api } from "../api";
import { actionButton, badge, errorNotice, facts, h, money, mount, poll, time, toMinor } from "../dom";
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
    let disputes: Dispute[] = [];
    try {
      data = await loadStory(id);
      // Read only when a charge says it is disputed: most payments never are.
      if (data.charges.some((c) => c.disputed)) disputes = (await api.get<List<Dispute>>("/v1/disputes", { payment_intent: id, limit: 100 })).data;
    } catch (error) {
      mount(story, errorNotice(error));
      return;
    }
    // Redraw only on change, so a form being filled is not reset by the poll.
    const stamp = JSON.stringify([data, disputes]);
    if (stamp === lastStamp && !force) return;
    lastStamp = stamp;
    renderSummary(summary, data, disputes);
    renderActions(actions, data, disputes, () => refresh(true));
    mount(story, h("h2", {}, "Timeline"), timeline(data, () => refresh(true)));
    main.setAttribute("data-render-ms", String(Math.round(performance.now() - started)));
  }

  return poll(() => refresh(), POLL_MS);
}

function renderSummary(el: HTMLElement, { payment: pi, charges, refunds }: PaymentStory, disputes: Dispute[]): void {
  const refunded = refunds.filter((r) => r.status !== "failed" && r.status !== "canceled").reduce((sum, r) => sum + r.amount, 0);
  const card = charges[0]?.payment_method_details?.card;
  const pairs: [string, string | Node][] = [
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
  if (disputes.length) {
    pairs.push(["Disputes", h("span", { id: "payment-disputes" }, disputes.map((d) => h("a", { href: `#/disputes/${d.id}`, class: "mono", "data-dispute": d.id }, d.id, " ", badge(d.status))))]);
  }
  if (pi.last_payment_error) pairs.push(["Last error", `${pi.last_payment_error.code ?? ""} ${pi.last_payment_error.decline_code ?? ""}: ${pi.last_payment_error.message ?? ""}`]);
  mount(el, facts(pairs));
}

function renderActions(el: HTMLElement, { payment: pi, refunds }: PaymentStory, disputes: Dispute[], reload: () => Promise<void>): void {
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
  // A chargeback already took the money back: the API refuses a refund (charge_disputed).
  const chargeback = disputes.find((d) => !d.is_charge_refundable);
  if (pi.status === "succeeded" && refundable > 0 && chargeback) {
    buttons.push(h("span", { class: "muted", id: "no-refund" }, `No refund: the charge was charged back (${chargeback.id}).`));
  } else if (pi.status === "succeeded" && refundable > 0) {
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
