// Disputes: the list (newest first; the first page polled, so a dispute the bank opens appears
// without a reload), and a dispute's page with its balance transactions and evidence, where the
// merchant saves evidence, submits it (evidence[...] with submit=true) or accepts the dispute
// (POST /v1/disputes/{id}/close).

import { ApiError, Dispute, List, api } from "../api";
import { actionButton, badge, errorNotice, facts, h, label, money, mount, notice, poll, table, time, words } from "../dom";
import { pages } from "../lists";

const POLL_MS = 3000;
const PAGE = 25;
/** The statuses in which evidence may still be changed and submitted. */
const RESPONDABLE = new Set(["needs_response", "warning_needs_response"]);

// Stripe's evidence fields: text the merchant writes (long ones get a text area), and ids of
// files (PayFlow has no Files API yet, so these are ids given as text).
const LONG_TEXT = ["product_description", "uncategorized_text", "refund_refusal_explanation", "cancellation_rebuttal", "duplicate_charge_explanation", "access_activity_log", "refund_policy_disclosure", "cancellation_policy_disclosure", "billing_address", "shipping_address"];
const SHORT_TEXT = ["customer_name", "customer_email_address", "customer_purchase_ip", "service_date", "shipping_carrier", "shipping_tracking_number", "shipping_date", "duplicate_charge_id"];
const FILES = ["receipt", "customer_communication", "customer_signature", "refund_policy", "cancellation_policy", "service_documentation", "shipping_documentation", "duplicate_charge_documentation", "uncategorized_file"];

export function renderDisputes(main: HTMLElement): () => void {
  const body = h("div", { id: "disputes-body" });
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Disputes")), body);
  const read = (after?: string) => api.get<List<Dispute>>("/v1/disputes", { limit: PAGE, starting_after: after });
  return pages(body, read, disputesTable, POLL_MS).stop;
}

function disputesTable(page: List<Dispute>): Node {
  if (!page.data.length) return notice("No disputes: none of this merchant's charges has been disputed.");
  const grid = table(
    ["Dispute", "Amount", "Status", "Reason", "Charge", "Payment", "Evidence due", "Opened"],
    page.data.map((d) => [
      h("a", { href: `#/disputes/${d.id}`, class: "mono" }, d.id),
      h("span", { class: "amount" }, money(d.amount, d.currency)),
      badge(d.status),
      words(d.reason),
      h("code", {}, d.charge),
      d.payment_intent ? h("a", { href: `#/payments/${d.payment_intent}`, class: "mono" }, d.payment_intent) : "—",
      RESPONDABLE.has(d.status) ? time(d.evidence_details.due_by) : "—",
      time(d.created),
    ]),
    { id: "disputes", class: "grid" },
  );
  grid.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-id", page.data[i].id));
  return grid;
}

export function renderDispute(main: HTMLElement, id: string): () => void {
  const title = h("h1", {}, "Dispute");
  const summary = h("section", { id: "dispute-summary" });
  const result = h("div", { id: "dispute-result" });
  const ledger = h("section", { id: "dispute-balance" });
  const evidence = h("section", { id: "evidence" });
  mount(main, h("div", { class: "page-head" }, h("a", { href: "#/disputes", class: "back" }, "← Disputes"), title, h("code", { class: "muted" }, id)), summary, result, h("h2", {}, "Balance transactions"), ledger, h("h2", {}, "Evidence"), evidence);
  let lastStamp = "";

  async function refresh(force = false): Promise<void> {
    let d: Dispute;
    try {
      d = await api.get<Dispute>(`/v1/disputes/${id}`);
    } catch (error) {
      mount(summary, errorNotice(error));
      // A dispute that does not exist will not appear: stop asking.
      if (error instanceof ApiError && error.status === 404) stop();
      return;
    }
    // Redraw only on change, so evidence being typed is not reset by the poll.
    const stamp = JSON.stringify(d);
    if (stamp === lastStamp && !force) return;
    lastStamp = stamp;
    const card = d.payment_method_details?.card;
    mount(title, `Dispute of ${money(d.amount, d.currency)} `, badge(d.status));
    mount(
      summary,
      facts(
        [
          ["Amount", money(d.amount, d.currency)],
          ["Status", badge(d.status)],
          ["Reason", words(d.reason)],
          ["Case", card?.case_type ?? (d.status.startsWith("warning_") ? "inquiry" : "chargeback")],
          ["Network reason", card?.network_reason_code ?? "—"],
          ["Charge", h("code", {}, d.charge)],
          ["Payment", d.payment_intent ? h("a", { href: `#/payments/${d.payment_intent}`, class: "mono", id: "dispute-payment" }, d.payment_intent) : "—"],
          ["Evidence due", RESPONDABLE.has(d.status) ? time(d.evidence_details.due_by) : "—"],
          ["Submissions", String(d.evidence_details.submission_count)],
          ["Opened", time(d.created)],
        ],
        { id: "dispute-facts", class: "facts card cols-3" },
      ),
    );
    mount(
      ledger,
      d.balance_transactions.length
        ? table(
            ["Transaction", "Type", "Amount", "Fee", "Net", "Status", "Created"],
            d.balance_transactions.map((t) => [h("code", {}, t.id), words(t.type), h("span", { class: "amount" }, money(t.amount, t.currency)), money(t.fee, t.currency), h("span", { class: "amount" }, money(t.net, t.currency)), badge(t.status), time(t.created)]),
            { id: "dispute-transactions", class: "grid" },
          )
        : notice("No money has moved: an inquiry withdraws nothing."),
    );
    renderEvidence(evidence, d, async (message) => {
      mount(result, notice(message));
      await refresh(true);
    });
  }

  const stop = poll(() => refresh(), POLL_MS);
  return stop;
}

function renderEvidence(el: HTMLElement, d: Dispute, done: (message: string) => Promise<void>): void {
  const given = (name: string) => d.evidence[name] ?? "";
  if (!RESPONDABLE.has(d.status)) {
    const sent = [...LONG_TEXT, ...SHORT_TEXT, ...FILES].filter((name) => given(name));
    mount(
      el,
      notice(`This dispute is ${words(d.status)}: its evidence can no longer change.`),
      sent.length ? facts(sent.map((name) => [label(name), given(name)]), { id: "evidence-sent", class: "facts card evidence-sent" }) : h("p", { class: "muted" }, "No evidence was given."),
    );
    return;
  }
  const inputs = new Map<string, HTMLInputElement | HTMLTextAreaElement>();
  const field = (name: string, long: boolean, hint?: string) => {
    const input = long ? h("textarea", { name: `evidence[${name}]`, rows: 2 }) : h("input", { name: `evidence[${name}]`, size: 28, placeholder: hint });
    input.value = given(name);
    inputs.set(name, input);
    return h("label", { class: "field" }, label(name), input);
  };
  /** The fields changed since the dispute was read ("" clears one). */
  const changed = () => Object.fromEntries([...inputs].filter(([name, input]) => input.value.trim() !== given(name)).map(([name, input]) => [name, input.value.trim()]));
  mount(
    el,
    h(
      "form",
      { class: "card evidence", id: "evidence-form", onsubmit: (e: Event) => e.preventDefault() },
      h("div", { class: "evidence-grid" }, SHORT_TEXT.map((name) => field(name, false))),
      h("div", { class: "evidence-grid long" }, LONG_TEXT.map((name) => field(name, true))),
      h("details", { class: "files" }, h("summary", {}, "Files (ids: PayFlow has no file upload yet)"), h("div", { class: "evidence-grid" }, FILES.map((name) => field(name, false, "file_...")))),
      h(
        "div",
        { class: "row" },
        actionButton("Save evidence", async () => {
          await api.post<Dispute>(`/v1/disputes/${d.id}`, { evidence: changed() });
          await done("Evidence saved (not submitted: it can still change).");
        }, { id: "save-evidence", class: "secondary" }),
        actionButton("Submit evidence", async () => {
          if (!confirm("Submit the evidence to the cardholder's bank? It cannot be changed afterwards.")) return;
          const after = await api.post<Dispute>(`/v1/disputes/${d.id}`, { evidence: changed(), submit: true });
          await done(`Evidence submitted: the dispute is ${words(after.status)}.`);
        }, { id: "submit-evidence" }),
        actionButton("Accept the dispute", async () => {
          const loss = d.status === "warning_needs_response" ? "The inquiry closes." : `The cardholder keeps ${money(d.amount, d.currency)} and the dispute fee is not returned.`;
          if (!confirm(`Accept this dispute without contesting it? ${loss}`)) return;
          const after = await api.post<Dispute>(`/v1/disputes/${d.id}/close`);
          await done(`Dispute accepted: it is ${words(after.status)}.`);
        }, { id: "close-dispute", class: "danger" }),
      ),
    ),
  );
}
