// A payment's story: what loadStory reads, and timeline() which merges it into one list in time
// order. Entries at the same second keep the order in which they happened (a charge before the
// event announcing it).

import { ApiError, BalanceTransaction, Charge, Delivery, PaymentIntent, Refund, StripeEvent, api, graphql } from "../api";
import { actionButton, badge, h, money, time } from "../dom";

export interface Attempt {
  attempt: number;
  connector: string;
  outcome: string;
  error_code: string | null;
  latency_ms: number;
  created: number;
  /** The connector's own answer, as stored: cut to 2 KB, secrets and card data removed. */
  answer: Record<string, unknown> | null;
}

export interface RoutingDecision {
  candidates: string[];
  skipped: Record<string, string>;
  execution?: string;
}

export interface ExecutionEvent {
  id: number;
  type: string;
  timestamp_ms: number | null;
  state?: string;
  connector?: string;
  error?: string;
  cause?: string;
}

/** A Step Functions execution of the payment state machine (only attempts handed over). */
export interface Execution {
  name: string;
  attempt: number;
  arn?: string;
  status: string;
  started_ms?: number | null;
  stopped_ms?: number | null;
  events?: ExecutionEvent[];
}

export interface PaymentStory {
  payment: PaymentIntent;
  attempts: Attempt[];
  routing: RoutingDecision[];
  executions: Execution[];
  charges: Charge[];
  refunds: Refund[];
  events: (StripeEvent & { deliveries: Delivery[] })[];
  ledger: BalanceTransaction[];
}

const STORY = `
query Story($id: ID!) {
  payment_intent(id: $id) {
    raw
    charges { raw balance_transactions { id amount fee net currency type status created source } }
    refunds { raw balance_transactions { id amount fee net currency type status created source } }
    attempts { attempt connector outcome error_code latency_ms created answer }
    routing
    executions
    events {
      id type created pending_webhooks object
      deliveries { id event event_type webhook_endpoint status created attempt_count next_attempt_at attempts }
    }
  }
}`;

interface StoryData {
  payment_intent: {
    raw: PaymentIntent;
    charges: { raw: Charge; balance_transactions: BalanceTransaction[] }[];
    refunds: { raw: Refund; balance_transactions: BalanceTransaction[] }[];
    attempts: Attempt[];
    routing: RoutingDecision[];
    executions: Execution[];
    events: (Omit<StripeEvent, "data"> & { object: StripeEvent["data"]["object"]; deliveries: Delivery[] })[];
  } | null;
}

/** Everything about one payment in one GraphQL query (the REST calls would be a dozen). */
export async function loadStory(id: string): Promise<PaymentStory> {
  const data = await graphql<StoryData>(STORY, { id });
  const pi = data.payment_intent;
  if (!pi) throw new ApiError(404, { type: "invalid_request_error", message: `No such payment_intent: '${id}'` });
  return {
    payment: pi.raw,
    attempts: pi.attempts,
    routing: pi.routing,
    executions: pi.executions,
    charges: pi.charges.map((c) => c.raw),
    refunds: pi.refunds.map((r) => r.raw),
    events: pi.events.map(({ object, ...event }) => ({ ...event, data: { object } })),
    ledger: [...pi.charges, ...pi.refunds].flatMap((o) => o.balance_transactions),
  };
}

interface Entry {
  at: number;
  order: number;
  kind: string;
  title: Node | string;
  detail?: Node | string | null;
  children?: Node | null;
}

const ORDER = { created: 0, routing: 1, attempt: 2, execution: 3, charge: 4, refund: 5, ledger: 6, event: 7 };
// Events written before any PSP call, for ties within one second (attempts carry seconds only).
const EARLY_EVENTS = new Set(["payment_intent.created", "payment_intent.processing"]);

export function timeline(story: PaymentStory, reload: () => Promise<void>): HTMLElement {
  const { payment: pi } = story;
  const entries: Entry[] = [{ at: pi.created, order: ORDER.created, kind: "created", title: `Payment created for ${money(pi.amount, pi.currency)}`, detail: `capture ${pi.capture_method}` }];
  const firstCallOf = new Map<number, number>();
  for (const a of story.attempts) firstCallOf.set(a.attempt, Math.min(firstCallOf.get(a.attempt) ?? a.created, a.created));
  story.routing.forEach((decision, i) => {
    const skipped = Object.entries(decision.skipped).map(([c, why]) => `${c}: ${why}`).join("; ");
    entries.push({
      at: firstCallOf.get(i + 1) ?? pi.created,
      order: ORDER.routing,
      kind: "routing",
      title: `Attempt ${i + 1} routed: ${decision.candidates.join(" → ") || "no connector"}`,
      detail: skipped ? `skipped ${skipped}` : null,
    });
  });
  for (const a of story.attempts) {
    entries.push({
      at: a.created,
      order: ORDER.attempt,
      kind: "attempt",
      title: h("span", {}, `PSP call to ${a.connector}: `, badge(a.outcome)),
      detail: `attempt ${a.attempt} · ${a.latency_ms} ms${a.error_code ? ` · ${a.error_code}` : ""}`,
      children: a.answer ? answerOf(a.answer) : null,
    });
  }
  for (const x of story.executions) {
    entries.push({
      at: x.started_ms ? Math.floor(x.started_ms / 1000) : (firstCallOf.get(x.attempt) ?? pi.created),
      order: ORDER.execution,
      kind: "execution",
      title: h("span", {}, "Step Functions execution ", h("code", {}, x.name), " ", badge(x.status)),
      detail: executionSummary(x),
      children: x.events?.length ? executionHistory(x.events, x.started_ms ?? null) : null,
    });
  }
  for (const c of story.charges) {
    entries.push({
      at: c.created,
      order: ORDER.charge,
      kind: "charge",
      title: h("span", {}, `Charge ${c.id} `, badge(c.status)),
      detail: [
        `captured ${money(c.amount_captured, c.currency)}`,
        c.amount_refunded ? `refunded ${money(c.amount_refunded, c.currency)}` : "",
        c.failure_code ? `${c.failure_code}: ${c.failure_message ?? ""}` : "",
      ].filter(Boolean).join(" · "),
    });
  }
  for (const r of story.refunds) {
    entries.push({ at: r.created, order: ORDER.refund, kind: "refund", title: h("span", {}, `Refund ${r.id} of ${money(r.amount, r.currency)} `, badge(r.status)), detail: r.reason ?? r.failure_reason ?? null });
  }
  for (const t of story.ledger) {
    entries.push({ at: t.created, order: ORDER.ledger, kind: "ledger", title: `Ledger ${t.type} ${money(t.amount, t.currency)} (fee ${money(t.fee, t.currency)}, net ${money(t.net, t.currency)})`, detail: `${t.id} · ${t.status}` });
  }
  // The list is newest first; oldest first keeps same-second events in the order they happened.
  for (const e of [...story.events].reverse()) {
    entries.push({
      at: e.created,
      order: EARLY_EVENTS.has(e.type) ? ORDER.created : ORDER.event,
      kind: "event",
      title: h("span", {}, "Event ", h("code", {}, e.type)),
      detail: `${e.id}${e.pending_webhooks ? ` · ${e.pending_webhooks} pending webhook(s)` : ""}`,
      children: e.deliveries.length ? deliveryList(e.deliveries, reload) : null,
    });
  }
  entries.sort((a, b) => a.at - b.at || a.order - b.order);
  return h(
    "ol",
    { class: "timeline" },
    entries.map((e) => h("li", { class: `entry entry-${e.kind}`, "data-kind": e.kind }, h("time", {}, time(e.at)), h("div", { class: "what" }, h("div", { class: "title" }, e.title), e.detail ? h("div", { class: "detail" }, e.detail) : null, e.children ?? null))),
  );
}

/** A delivery's attempts and its resend button (one more attempt now, trigger "manual"). */
export function deliveryList(deliveries: Delivery[], reload: () => Promise<void>): HTMLElement {
  return h(
    "ul",
    { class: "deliveries" },
    deliveries.map((d) =>
      h(
        "li",
        { class: "delivery", "data-delivery": d.id },
        h(
          "div",
          {},
          d.event_type ? h("code", {}, d.event_type) : null,
          " to ",
          h("code", {}, d.attempts.at(-1)?.url ?? d.webhook_endpoint),
          " ",
          badge(d.status),
          h("span", { class: "attempt-count" }, ` ${d.attempt_count} attempt(s)`),
          d.next_attempt_at ? ` · next ${time(d.next_attempt_at)}` : "",
        ),
        d.attempts.length
          ? h(
              "ul",
              { class: "attempts" },
              d.attempts.map((a) =>
                h("li", {}, `#${a.attempt} ${time(a.created)} ${a.trigger}: `, a.status_code ? `HTTP ${a.status_code}` : a.error ?? "no answer", ` · ${a.latency_ms} ms`, a.response ? h("pre", { class: "excerpt" }, a.response.length > 160 ? `${a.response.slice(0, 160)}…` : a.response) : null),
              ),
            )
          : null,
        actionButton("Resend", async () => {
          await api.post(`/v1/webhook_deliveries/${d.id}/retry`);
          await reload();
        }, { class: "small resend" }),
      ),
    ),
  );
}

/** The connector's raw answer, folded away until asked for (it can be a few hundred bytes). */
function answerOf(answer: Record<string, unknown>): HTMLElement {
  return h("details", { class: "answer" }, h("summary", {}, "Connector's answer"), h("pre", { class: "excerpt" }, JSON.stringify(answer, null, 2)));
}

function executionSummary(x: Execution): string {
  if (x.status === "not_found") return `attempt ${x.attempt} · Step Functions no longer has this execution`;
  const took = x.started_ms && x.stopped_ms ? ` · ${((x.stopped_ms - x.started_ms) / 1000).toFixed(2)} s` : x.status === "running" ? " · still running" : "";
  const retries = (x.events ?? []).filter((e) => e.error).length;
  return `attempt ${x.attempt}${took} · ${x.events?.length ?? 0} history events${retries ? ` · ${retries} failed step(s)` : ""}`;
}

/** The execution's state history: one row per event, time from the start in ms. */
function executionHistory(events: ExecutionEvent[], started: number | null): HTMLElement {
  return h(
    "details",
    { class: "execution-history", open: true },
    h("summary", {}, "State history"),
    h(
      "table",
      { class: "grid compact" },
      h("thead", {}, h("tr", {}, ["+ms", "Event", "State", "Connector", "Error"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        events.map((e) =>
          h(
            "tr",
            { "data-type": e.type, class: e.error ? "failed" : "" },
            h("td", { class: "num" }, e.timestamp_ms !== null && started !== null ? String(e.timestamp_ms - started) : ""),
            h("td", {}, e.type),
            h("td", {}, e.state ?? ""),
            h("td", {}, e.connector ?? ""),
            h("td", { title: e.cause ?? "" }, e.error ?? ""),
          ),
        ),
      ),
    ),
  );
}
