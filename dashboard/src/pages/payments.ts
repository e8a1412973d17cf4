// The payments list: filters become one query of Stripe's search language
// (GET /v1/payment_intents/search), no filter is the plain list; a connector or payment method
// type alone is the list through its index (GET /v1/payment_intents?connector=...), and with
// other filters a search clause the search also reads through that index. The first page is
// polled so new payments appear without a reload.

import { ApiError, List, PaymentIntent, api } from "../api";
import { badge, errorNotice, h, money, mount, notice, poll, table, time, toMinor } from "../dom";

const POLL_MS = 3000;
const PAGE = 25;
const METHODS = ["card", "upi", "wallet"];
const STATUSES = ["requires_payment_method", "requires_confirmation", "requires_action", "processing", "requires_capture", "canceled", "succeeded"];

interface Filters {
  status: string;
  connector: string;
  method: string;
  amountFrom: string;
  amountTo: string;
  createdFrom: string;
  createdTo: string;
  search: string;
}

function quote(value: string): string {
  return `'${value.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

function epoch(date: string, endOfDay: boolean): number {
  return Math.floor(Date.parse(`${date}T${endOfDay ? "23:59:59" : "00:00:00"}Z`) / 1000);
}

/** The search query for the filters, or "" when none but the indexed ones (connector, method)
 * is set: then the list is read, through the index when one of those is set. */
export function searchQuery(f: Filters): string {
  const clauses: string[] = [];
  if (f.status) clauses.push(`status:${quote(f.status)}`);
  const low = toMinor(f.amountFrom, "usd");
  const high = toMinor(f.amountTo, "usd");
  if (low !== null) clauses.push(`amount>=${low}`);
  if (high !== null) clauses.push(`amount<=${high}`);
  if (f.createdFrom) clauses.push(`created>=${epoch(f.createdFrom, false)}`);
  if (f.createdTo) clauses.push(`created<=${epoch(f.createdTo, true)}`);
  const text = f.search.trim();
  const pair = /^([^:=\s]+)\s*[:=]\s*(.+)$/.exec(text);
  if (pair) clauses.push(`metadata[${quote(pair[1])}]:${quote(pair[2].trim())}`);
  if (!clauses.length) return "";
  if (f.connector) clauses.push(`connector:${quote(f.connector)}`);
  if (f.method) clauses.push(`payment_method_type:${quote(f.method)}`);
  return clauses.join(" AND ");
}

export function renderPayments(main: HTMLElement): () => void {
  const filters: Filters = { status: "", connector: "", method: "", amountFrom: "", amountTo: "", createdFrom: "", createdTo: "", search: "" };
  const body = h("div", { id: "payments-body" });
  const updated = h("span", { class: "muted", id: "updated" });
  let cursor: { after?: string; page?: string } = {};
  let seen = new Set<string>();

  const input = (name: keyof Filters, attrs: Record<string, string>) => {
    const el = h("input", { name, ...attrs });
    el.addEventListener("change", () => {
      filters[name] = el.value;
      cursor = {};
      void load(true);
    });
    return el;
  };
  const status = h("select", { name: "status" }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s }, s.replaceAll("_", " "))));
  status.addEventListener("change", () => {
    filters.status = status.value;
    cursor = {};
    void load(true);
  });
  const connector = h("select", { name: "connector" }, h("option", { value: "" }, "any connector"));
  const method = h("select", { name: "method" }, h("option", { value: "" }, "any method"), METHODS.map((m) => h("option", { value: m }, m)));
  for (const [select, name] of [[connector, "connector"], [method, "method"]] as const) {
    select.addEventListener("change", () => {
      filters[name] = select.value;
      cursor = {};
      void load(true);
    });
  }
  // The merchant's own connectors (its routing) are the choices.
  void api.get<List<{ id: string }>>("/v1/connectors").then((list) => connector.append(...list.data.map((c) => h("option", { value: c.id }, c.id)))).catch(() => undefined);
  const search = h("input", { name: "search", type: "search", placeholder: "pi_... or metadata key:value", size: 30 });
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      filters.search = search.value;
      cursor = {};
      void load(true);
    }
  });

  mount(
    main,
    h("div", { class: "page-head" }, h("h1", {}, "Payments"), updated),
    h(
      "form",
      { class: "filters", onsubmit: (e: Event) => e.preventDefault() },
      search,
      status,
      connector,
      method,
      h("label", {}, "amount from ", input("amountFrom", { type: "number", min: "0", step: "0.01", size: "6" })),
      h("label", {}, "to ", input("amountTo", { type: "number", min: "0", step: "0.01", size: "6" })),
      h("label", {}, "created from ", input("createdFrom", { type: "date" })),
      h("label", {}, "to ", input("createdTo", { type: "date" })),
    ),
    body,
  );

  async function fetchPage(): Promise<{ rows: PaymentIntent[]; more: boolean; next?: string }> {
    const text = filters.search.trim();
    if (/^pi_[A-Za-z0-9_]+$/.test(text)) {
      try {
        return { rows: [await api.get<PaymentIntent>(`/v1/payment_intents/${text}`)], more: false };
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) return { rows: [], more: false };
        throw error;
      }
    }
    const query = searchQuery(filters);
    if (query) {
      const page = await api.get<List<PaymentIntent>>("/v1/payment_intents/search", { query, limit: PAGE, page: cursor.page });
      return { rows: page.data, more: page.has_more, next: page.next_page ?? undefined };
    }
    const page = await api.get<List<PaymentIntent>>("/v1/payment_intents", {
      limit: PAGE,
      starting_after: cursor.after,
      connector: filters.connector || undefined,
      payment_method_type: filters.method || undefined,
    });
    return { rows: page.data, more: page.has_more, next: page.data.at(-1)?.id };
  }

  async function load(reset: boolean): Promise<void> {
    const started = performance.now();
    let result;
    try {
      result = await fetchPage();
    } catch (error) {
      mount(body, errorNotice(error));
      return;
    }
    const fresh = reset ? new Set<string>() : new Set(result.rows.map((r) => r.id).filter((id) => seen.size > 0 && !seen.has(id)));
    seen = new Set([...seen, ...result.rows.map((r) => r.id)]);
    const rows = result.rows.map((pi) => [
      h("a", { href: `#/payments/${pi.id}`, class: "mono" }, pi.id),
      h("span", { class: "amount" }, money(pi.amount, pi.currency)),
      badge(pi.status),
      pi.last_payment_error?.decline_code ?? pi.last_payment_error?.code ?? "",
      pi.description ?? Object.entries(pi.metadata).map(([k, v]) => `${k}=${v}`).join(" "),
      time(pi.created),
    ]);
    const grid = table(["Payment", "Amount", "Status", "Decline", "Description / metadata", "Created"], rows, { id: "payments", class: "grid" });
    grid.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.setAttribute("data-id", result.rows[i].id);
      if (fresh.has(result.rows[i].id)) tr.classList.add("fresh");
    });
    const pager = h(
      "div",
      { class: "pager" },
      cursor.after || cursor.page ? h("button", { type: "button", onclick: () => ((cursor = {}), void load(true)) }, "First page") : null,
      result.more && result.next
        ? h("button", { type: "button", id: "next-page", onclick: () => ((cursor = searchQuery(filters) ? { page: result.next } : { after: result.next }), void load(true)) }, "Next page")
        : null,
    );
    mount(body, result.rows.length ? grid : notice(result.more ? "No match among the payments read so far: try the next page." : "No payments match."), pager);
    updated.textContent = `updated ${new Date().toLocaleTimeString()} · ${Math.round(performance.now() - started)} ms`;
    updated.setAttribute("data-ms", String(Math.round(performance.now() - started)));
  }

  let first = true;
  // Only the first page is live: a later page stays still while someone reads it.
  return poll(async () => {
    if (first || (!cursor.after && !cursor.page)) await load(first);
    first = false;
  }, POLL_MS);
}
