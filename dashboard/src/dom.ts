// A few DOM helpers: elements are built with h(), never from HTML strings, so values from the
// API (metadata, URLs, a receiver's response) are always text, never markup.

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | null | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

/** Replace everything in `parent` with `children`. */
export function mount(parent: Element, ...children: (Child | Child[])[]): void {
  parent.replaceChildren();
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

// Currencies without minor units (Stripe's list): their amounts are already whole units.
const ZERO_DECIMAL = new Set(["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"]);

/** Integer minor units as the currency writes them: 1050 usd -> "$10.50"; `signed` for what a
 * balance moves by: "+$10.50", "-$10.50". */
export function money(amount: number, currency: string, signed = false): string {
  const code = currency.toLowerCase();
  const major = ZERO_DECIMAL.has(code) ? amount : amount / 100;
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: code.toUpperCase(), signDisplay: signed ? "exceptZero" : "auto" }).format(major);
  } catch {
    return `${signed && major > 0 ? "+" : ""}${major} ${code.toUpperCase()}`;
  }
}

/** Major units typed in a form -> integer minor units (or null when not a number). */
export function toMinor(text: string, currency: string): number | null {
  if (!text.trim()) return null;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0) return null;
  return Math.round(ZERO_DECIMAL.has(currency.toLowerCase()) ? value : value * 100);
}

export function time(epochSeconds: number | null | undefined): string {
  if (!epochSeconds) return "";
  return new Date(epochSeconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

/** An enum value as words: "amount_under" -> "amount under". */
export function words(name: string): string {
  return name.replaceAll("_", " ");
}

/** An enum value or field name as a label: "customer_name" -> "Customer name". */
export function label(name: string): string {
  const text = words(name);
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export function badge(status: string): HTMLSpanElement {
  return h("span", { class: `badge badge-${status.replace(/[^A-Za-z_]/g, "")}` }, words(status));
}

export function table(headers: string[], rows: (Child | Child[])[][], attrs: Attrs = {}): HTMLTableElement {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headers.map((title) => h("th", {}, title)))),
    h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((cell) => h("td", {}, cell))))),
  );
}

export function notice(text: string, kind: "error" | "info" = "info"): HTMLDivElement {
  return h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

/** What went wrong, as the API said it (an ApiError's message is its Stripe-shaped one). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function errorNotice(error: unknown): HTMLDivElement {
  return notice(errorText(error), "error");
}

/** A card of label/value pairs (a payment's, a dispute's, a run's summary). */
export function facts(pairs: [string, Child | Child[]][], attrs: Attrs = {}): HTMLDListElement {
  return h("dl", { class: "facts card", ...attrs }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

/** A button that runs `action` once per click, disabled while it runs, errors shown beside it. */
export function actionButton(label: string, action: () => Promise<unknown>, attrs: Attrs = {}): HTMLSpanElement {
  const message = h("span", { class: "action-message" });
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    message.textContent = "";
    try {
      await action();
    } catch (error) {
      message.textContent = errorText(error);
      message.className = "action-message error";
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "action" }, button, message);
}

/** Under a page of a Stripe list read with `starting_after`: back to the first page, and on to
 * the next one when the API says there is more. */
export function pager(after: string | undefined, more: boolean, last: string | undefined, go: (after?: string) => void): HTMLDivElement {
  return h(
    "div",
    { class: "pager" },
    after ? h("button", { type: "button", class: "secondary", onclick: () => go(undefined) }, "First page") : null,
    more && last ? h("button", { type: "button", class: "next-page", onclick: () => go(last) }, "Next page") : null,
  );
}

/** Run `step` now and then every `ms` after each run ends, until the returned stop is called;
 * a hidden tab skips its turns. */
export function poll(step: () => Promise<void>, ms: number): () => void {
  let stopped = false;
  let timer: number | undefined;
  const run = async () => {
    if (stopped) return;
    if (!document.hidden) await step().catch(() => undefined);
    if (!stopped) timer = window.setTimeout(run, ms);
  };
  void run();
  return () => {
    stopped = true;
    window.clearTimeout(timer);
  };
}
