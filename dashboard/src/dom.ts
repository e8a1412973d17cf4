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

/** Integer minor units as the currency writes them: 1050 usd -> "$10.50". */
export function money(amount: number, currency: string): string {
  const code = currency.toLowerCase();
  const major = ZERO_DECIMAL.has(code) ? amount : amount / 100;
  try {
    return new Intl.NumberFormat("en-US", { style: "currency", currency: code.toUpperCase() }).format(major);
  } catch {
    return `${major} ${code.toUpperCase()}`;
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

export function badge(status: string): HTMLSpanElement {
  return h("span", { class: `badge badge-${status.replace(/[^A-Za-z_]/g, "")}` }, status.replaceAll("_", " "));
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
      message.textContent = error instanceof Error ? error.message : String(error);
      message.className = "action-message error";
    } finally {
      button.disabled = false;
    }
  });
  return h("span", { class: "action" }, button, message);
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
