// Reconciliation: the runs (newest first) and a form to start one for a day; a run's page with
// its counts and exceptions; the exceptions list with filters (status, kind, run); an
// exception's page, what the provider said against what PayFlow has, and its resolution
// (accept_provider or write_off, each one balanced ledger entry posted by the API).

import { ApiError, List, ReconciliationException, ReconciliationRun, api } from "../api";
import { actionButton, badge, errorNotice, facts, h, label, money, mount, notice, poll, table, time, words } from "../dom";
import { pages } from "../lists";

const POLL_MS = 3000;
const RUN_POLL_MS = 1000;
const PAGE = 25;
const STATUSES = ["open", "repaired", "resolved"];

interface Kind {
  title: string;
  says: string;
  /** What each of the two amounts is, and what their difference is. */
  provider: string;
  payflow: string;
  difference: string;
}

const SETTLED = { provider: "Provider settled", payflow: "PayFlow booked", difference: "the provider's amount less PayFlow's" };
const PAID_OUT = { provider: "Bank received", payflow: "Provider paid out", difference: "what the bank received less the payout" };

/** Each kind in a sentence (docs/reconciliation.md), and what its two amounts are. */
const KINDS: Record<string, Kind> = {
  missing_in_payflow: { title: "Missing in PayFlow", says: "The provider settled something PayFlow has no record of.", ...SETTLED },
  missing_at_provider: { title: "Missing at the provider", says: "PayFlow booked something the provider has not settled within the SLA.", ...SETTLED },
  amount_over: { title: "Amount over", says: "The provider settled more than PayFlow booked.", ...SETTLED },
  amount_under: { title: "Amount under", says: "The provider settled less than PayFlow booked.", ...SETTLED },
  currency_mismatch: { title: "Currency mismatch", says: "The provider settled in another currency than PayFlow booked.", ...SETTLED },
  duplicate_settlement: { title: "Duplicate settlement", says: "The provider settled the same charge, refund or dispute movement a second time.", ...SETTLED, provider: "Provider settled again", payflow: "PayFlow booked for it" },
  missed_capture: { title: "Missed capture", says: "The provider captured a payment PayFlow held as only authorized.", ...SETTLED, provider: "Provider captured", payflow: "PayFlow captured" },
  payout_missing_in_bank: { title: "Payout missing in the bank", says: "A payout of the provider's report never reached the bank statement.", ...PAID_OUT },
  payout_amount_mismatch: { title: "Payout amount mismatch", says: "The bank received another amount than the provider paid out.", ...PAID_OUT },
};

/** A kind PayFlow adds later still reads, in its own words. */
function kindOf(kind: string): Kind {
  return KINDS[kind] ?? { title: label(kind), says: "", ...SETTLED };
}

/** "amount under 1 · duplicate settlement 2" (or "" when none). */
function kindCounts(byKind: Record<string, number>): string {
  return Object.entries(byKind)
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kindOf(kind).title.toLowerCase()} ${n}`)
    .join(" · ");
}

/** A run's exceptions by kind; the repaired ones are counted apart (the run counts by kind only
 * those left for a person). */
function exceptionsText(run: ReconciliationRun): string {
  return [kindCounts(run.exceptions_by_kind), run.counts.repaired ? `${run.counts.repaired} repaired` : ""].filter(Boolean).join(" · ");
}

/** Provider fees per currency: "$1.23, ₹4.00" (or "—"). */
function feesText(fees: Record<string, number>): string {
  return Object.entries(fees).map(([currency, amount]) => money(amount, currency)).join(", ") || "—";
}

/** What PayFlow has, in its own currency (another one only for a currency mismatch). */
function payflowSide(x: ReconciliationException): string {
  return money(x.payflow_amount, x.payflow_currency ?? x.currency);
}

/** What a resolution will do, said before it is done (beside the buttons and in the confirmation). */
function resolutionEffect(x: ReconciliationException, resolution: "accept_provider" | "write_off"): string {
  const where = resolution === "accept_provider" ? "the merchant's available balance" : "the platform's account reconciliation_write_off";
  const action = resolution === "accept_provider" ? `Accepting ${x.provider}'s figures` : "Writing it off";
  const then = resolution === "accept_provider" ? "" : "; the merchant's balance does not move";
  if (x.kind === "currency_mismatch") {
    return `${action} takes PayFlow's ${payflowSide(x)} back and books the provider's ${money(x.provider_amount, x.currency)} in ${where}${then}.`;
  }
  return `${action} books the difference, ${money(x.difference, x.currency, true)} (${kindOf(x.kind).difference}), in ${where}${then}.`;
}

export function renderReconciliation(main: HTMLElement): () => void {
  const runs = h("section", { id: "runs" });
  const exceptions = h("section", { id: "exceptions" });
  mount(main, h("div", { class: "page-head" }, h("h1", {}, "Reconciliation")), startForm(), runs, h("h2", {}, "Exceptions"), exceptions);
  const list = exceptionList(exceptions);
  const read = (after?: string) => api.get<List<ReconciliationRun>>("/v1/reconciliation/runs", { limit: PAGE, starting_after: after });
  return pages(
    runs,
    read,
    (page) => {
      // The run filter offers the runs shown; a run that changed may have found more.
      list.setRuns(page.data);
      void list.reload();
      return page.data.length ? runsTable(page.data) : notice("No run yet: start one for a day above.");
    },
    POLL_MS,
  ).stop;
}

function startForm(): HTMLFormElement {
  const date = h("input", { type: "date", name: "date", required: true, value: new Date().toISOString().slice(0, 10) });
  const sla = h("input", { type: "number", name: "sla_days", min: "0", max: "30", value: "3", size: 3, title: "How many days after the date a booking may still await its settlement" });
  return h(
    "form",
    { class: "card row", id: "start-run", onsubmit: (e: Event) => e.preventDefault() },
    h("label", {}, "Reconcile the day ", date),
    h("label", {}, "settlement SLA ", sla, " days"),
    actionButton("Start run", async () => {
      const run = await api.post<ReconciliationRun>("/v1/reconciliation/runs", { date: date.value, sla_days: sla.value });
      location.hash = `#/reconciliation/runs/${run.id}`;
    }, { id: "start-run-button" }),
  );
}

function runsTable(runs: ReconciliationRun[]): HTMLTableElement {
  const grid = table(
    ["Day", "Status", "Providers", "Lines", "Matched", "Repaired", "Exceptions", "Awaiting settlement", "Payouts", "Fees", "Started"],
    runs.map((r) => [
      h("a", { href: `#/reconciliation/runs/${r.id}`, class: "nowrap" }, r.date),
      badge(r.status),
      r.providers.join(", ") || "—",
      r.counts.rows,
      r.counts.matched,
      r.counts.repaired,
      h("span", {}, h("strong", {}, r.counts.exceptions), r.counts.exceptions ? h("div", { class: "muted small" }, exceptionsText(r)) : null),
      r.counts.awaiting_settlement,
      r.counts.payouts,
      feesText(r.fees),
      time(r.created),
    ]),
    { id: "runs-table", class: "grid" },
  );
  grid.querySelectorAll("tbody tr").forEach((tr, i) => tr.setAttribute("data-run", runs[i].id));
  return grid;
}

export function renderRun(main: HTMLElement, id: string): () => void {
  const title = h("h1", {}, "Run ", h("span", { class: "mono" }, id));
  const summary = h("section", { id: "run-summary" });
  const exceptions = h("section", { id: "exceptions" });
  mount(main, h("div", { class: "page-head" }, h("a", { href: "#/reconciliation", class: "back" }, "← Reconciliation"), title), summary, h("h2", {}, "Its exceptions"), exceptions);
  const list = exceptionList(exceptions, id);
  let lastStamp = "";
  // A run's workflow takes seconds: read it every second until it ends, then no more (an ended
  // run does not change).
  const stop = poll(async () => {
    let run: ReconciliationRun;
    try {
      run = await api.get<ReconciliationRun>(`/v1/reconciliation/runs/${id}`);
    } catch (error) {
      mount(summary, errorNotice(error));
      mount(exceptions);
      if (error instanceof ApiError && error.status === 404) stop();
      return;
    }
    if (run.status !== "running") stop();
    const stamp = JSON.stringify(run);
    if (stamp === lastStamp) return;
    lastStamp = stamp;
    mount(title, `Run of ${run.date} `, badge(run.status));
    const skipped = Object.entries(run.skipped_providers).map(([c, why]) => `${c}: ${why}`).join("; ");
    mount(
      summary,
      facts(
        [
          ["Day", run.date],
          ["Status", badge(run.status)],
          ["Providers", run.providers.join(", ") || "—"],
          ["Started", time(run.created)],
          ["Completed", time(run.completed_at) || "—"],
          ["SLA", `${run.sla_days} day(s)`],
          ["Lines", String(run.counts.rows)],
          ["Matched", String(run.counts.matched)],
          ["Repaired", String(run.counts.repaired)],
          ["Exceptions", String(run.counts.exceptions)],
          ["Found", exceptionsText(run) || "—"],
          ["Awaiting settlement", String(run.counts.awaiting_settlement)],
          ["Payouts", String(run.counts.payouts)],
          ["Fees booked", feesText(run.fees)],
          ["Run id", h("code", {}, run.id)],
        ],
        { id: "run-facts", class: "facts card cols-3" },
      ),
      skipped ? notice(`Skipped providers (their reports cannot be read yet): ${skipped}`) : null,
      run.failure ? notice(`The run failed: ${run.failure}. Running the day again is safe.`, "error") : null,
      run.status === "running" ? notice("Matching: this page updates when the run ends.") : null,
    );
    if (run.status !== "running") await list.reload();
  }, RUN_POLL_MS);
  return stop;
}

interface ExceptionList {
  reload: () => Promise<void>;
  /** The runs the run filter offers (the main page's list). */
  setRuns: (runs: ReconciliationRun[]) => void;
}

/** The exceptions, newest first, filtered by status, kind and run (fixed on a run's page). */
function exceptionList(el: HTMLElement, fixedRun?: string): ExceptionList {
  const filters = { status: "", kind: "", run: fixedRun ?? "" };
  const body = h("div", { id: "exceptions-body" });
  const select = (name: "status" | "kind" | "run", choices: string[], any: string) => {
    const choice = h("select", { name: `exception-${name}` }, h("option", { value: "" }, any), choices.map((c) => h("option", { value: c }, name === "kind" ? kindOf(c).title : words(c))));
    choice.addEventListener("change", () => {
      filters[name] = choice.value;
      void listed.reload(true);
    });
    return choice;
  };
  const runChoice = fixedRun ? null : select("run", [], "any run");
  mount(
    el,
    h("form", { class: "filters", onsubmit: (e: Event) => e.preventDefault() }, select("status", STATUSES, "any status"), select("kind", Object.keys(KINDS), "any kind"), runChoice),
    body,
  );

  const read = (at?: string) =>
    api.get<List<ReconciliationException>>("/v1/reconciliation/exceptions", {
      limit: PAGE,
      starting_after: at,
      status: filters.status || undefined,
      kind: filters.kind || undefined,
      run: filters.run || undefined,
    });
  const listed = pages(body, read, (page) => {
    if (!page.data.length) return notice(filters.status || filters.kind || (filters.run && !fixedRun) ? "No exception matches." : "No exceptions: everything matched.");
    const grid = table(
      ["Exception", "Kind", "Status", "Provider", "About", "Provider settled", "PayFlow has", "Difference", "Found"],
      page.data.map((x) => [
        h("a", { href: `#/reconciliation/exceptions/${x.id}`, class: "mono" }, x.id),
        kindOf(x.kind).title,
        badge(x.status),
        x.provider,
        subjectOf(x),
        h("span", { class: "amount" }, money(x.provider_amount, x.currency)),
        h("span", { class: "amount" }, payflowSide(x)),
        h("span", { class: "amount" }, x.kind === "currency_mismatch" ? "—" : money(x.difference, x.currency, true)),
        time(x.created),
      ]),
      { id: "exceptions-table", class: "grid" },
    );
    grid.querySelectorAll("tbody tr").forEach((tr, i) => {
      tr.setAttribute("data-exception", page.data[i].id);
      tr.setAttribute("data-kind", page.data[i].kind);
    });
    return grid;
  });

  return {
    reload: () => listed.reload(),
    setRuns(runs) {
      if (!runChoice) return;
      // The run chosen stays a choice even when the runs list shows another page.
      const chosen = runChoice.value;
      const offered = runs.map((r) => h("option", { value: r.id, selected: r.id === chosen }, `${r.date}, started ${time(r.created)}`));
      const kept = chosen && !runs.some((r) => r.id === chosen) ? h("option", { value: chosen, selected: true }, chosen) : null;
      mount(runChoice, h("option", { value: "" }, "any run"), kept, offered);
    },
  };
}

/** The object an exception is about, linked to its payment when it has one. */
function subjectOf(x: ReconciliationException): Node {
  const what = h("code", {}, x.object_id ?? x.subject);
  return x.payment_intent ? h("span", {}, what, " ", h("a", { href: `#/payments/${x.payment_intent}`, class: "mono" }, x.payment_intent)) : what;
}

export function renderException(main: HTMLElement, id: string): () => void {
  const back = h("a", { href: "#/reconciliation", class: "back" }, "← Reconciliation");
  const title = h("h1", {}, "Exception");
  const body = h("section", { id: "exception" });
  const result = h("div", { id: "resolve-result" });
  mount(main, h("div", { class: "page-head" }, back, title, h("code", { class: "muted" }, id)), result, body);

  async function draw(): Promise<void> {
    let x: ReconciliationException;
    try {
      x = await api.get<ReconciliationException>(`/v1/reconciliation/exceptions/${id}`);
    } catch (error) {
      mount(body, errorNotice(error));
      return;
    }
    back.setAttribute("href", `#/reconciliation/runs/${x.run}`);
    back.textContent = "← Its run";
    const kind = kindOf(x.kind);
    mount(title, kind.title, " ", badge(x.status));
    const comparison = table(
      ["", kind.provider, kind.payflow, "Difference"],
      [
        [
          h("strong", {}, "Amount"),
          h("span", { class: "amount", "data-side": "provider" }, money(x.provider_amount, x.currency)),
          h("span", { class: "amount", "data-side": "payflow" }, payflowSide(x)),
          h("span", { class: "amount", "data-side": "difference" }, x.kind === "currency_mismatch" ? "other currency" : money(x.difference, x.currency, true)),
        ],
        [h("strong", {}, "Currency"), x.currency.toUpperCase(), (x.payflow_currency ?? x.currency).toUpperCase(), ""],
      ],
      { id: "comparison", class: "grid compare" },
    );
    mount(
      body,
      h("p", { class: "says" }, kind.says),
      comparison,
      facts(
        [
          ["Status", badge(x.status)],
          ["Provider", x.provider],
          ["Object", h("code", {}, x.object_id ?? x.subject)],
          ["Payment", x.payment_intent ? h("a", { href: `#/payments/${x.payment_intent}`, class: "mono" }, x.payment_intent) : "—"],
          ["Settlement line", x.settlement_line ? h("code", {}, x.settlement_line) : "—"],
          ["PSP reference", x.psp_reference ? h("code", {}, x.psp_reference) : "—"],
          ["Found", time(x.created)],
          ["Run", h("a", { href: `#/reconciliation/runs/${x.run}`, class: "mono" }, x.run)],
          ["Repair", x.repair ? `${words(x.repair)}${x.repair_error ? ` (failed: ${x.repair_error})` : ""}` : "—"],
          ["Resolution", x.resolution ? words(x.resolution) : "—"],
          ["Resolved", time(x.resolved_at) || "—"],
          ["Ledger entries", x.ledger_entries.length ? h("span", { id: "ledger-entries" }, x.ledger_entries.map((e) => h("code", {}, e, " "))) : "—"],
        ],
        { id: "exception-facts", class: "facts card cols-3" },
      ),
      x.status === "open" ? resolveButtons(x, resolved) : h("p", { class: "muted", id: "not-open" }, `This exception is ${x.status}: nothing is left to resolve.`),
    );
  }

  async function resolved(after: ReconciliationException): Promise<void> {
    mount(result, notice(`Resolved with ${words(after.resolution ?? "")}: ledger ${after.ledger_entries.join(", ")}.`));
    await draw();
  }

  void draw();
  return () => undefined;
}

function resolveButtons(x: ReconciliationException, done: (after: ReconciliationException) => Promise<void>): HTMLElement {
  const resolve = (resolution: "accept_provider" | "write_off") => async () => {
    if (!confirm(`${resolutionEffect(x, resolution)} Resolve it this way?`)) return;
    await done(await api.post<ReconciliationException>(`/v1/reconciliation/exceptions/${x.id}/resolve`, { resolution }));
  };
  return h(
    "div",
    { class: "card", id: "resolve" },
    h("h3", {}, "Resolve"),
    h("p", { class: "muted" }, resolutionEffect(x, "accept_provider"), h("br"), resolutionEffect(x, "write_off")),
    h(
      "div",
      { class: "actions" },
      actionButton("Accept the provider's figures", resolve("accept_provider"), { id: "accept-provider" }),
      actionButton("Write off", resolve("write_off"), { id: "write-off", class: "danger" }),
    ),
  );
}
