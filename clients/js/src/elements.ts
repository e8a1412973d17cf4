// PayFlow's frame (/js/v1/elements.html), on PayFlow's origin inside the merchant's page.
// role=payment: the card form (and, when the merchant offers them, UPI and PayFlow Wallet); it
// tokenizes what the customer typed into a PaymentMethod with the publishable key and hands the
// merchant's page only the PaymentMethod's id.
// role=controller: hidden; retrieves and confirms intents for the merchant's page.
// Either way it obeys only its parent window at the origin the SDK named when it made the frame.

import { apiBaseOf, call, type ApiResult } from "./api";
import {
  cardFields,
  cvcLength,
  detectBrand,
  formatExpiry,
  formatNumber,
  MAX_DIGITS,
  validateCard,
  type CardError,
  type CardInput,
} from "./card";
import { accept, envelope, type Notice, type Request } from "./protocol";
import { validateVpa, type UpiFlow } from "./upi";

type Method = "card" | "upi" | "wallet";
const METHODS: Method[] = ["card", "upi", "wallet"];
/** The test PaymentMethod a PayFlow Wallet payment confirms with: the wallet's own page asks
 * the customer to approve (the sandbox has no wallet account to tokenize). */
const WALLET_PAYMENT_METHOD = "pm_wallet";
const settings = new URLSearchParams(location.hash.slice(1));
const key = settings.get("key") ?? "";
const parentOrigin = settings.get("origin") ?? "";
const role = settings.get("role") ?? "payment";
const offered = (settings.get("methods") ?? "card").split(",").filter((m): m is Method => METHODS.includes(m as Method));
const methods: Method[] = offered.length ? offered : ["card"];
let method: Method = methods[0];
// elements.html is served at <api>/js/v1/: the API is two levels up.
const apiBase = apiBaseOf(location, 2);

function tell(message: Notice): void {
  if (parentOrigin) window.parent.postMessage(envelope(message), parentOrigin);
}

function $(id: string): HTMLInputElement {
  return document.getElementById(id) as HTMLInputElement;
}

function input(): CardInput {
  return { number: $("number").value, expiry: $("expiry").value, cvc: $("cvc").value };
}

function show(problem: CardError | null): void {
  const box = document.getElementById("error") as HTMLElement;
  box.textContent = problem ? problem.message : "";
  for (const field of ["number", "expiry", "cvc"]) {
    $(field).classList.toggle("invalid", problem?.field === field);
    $(field).setAttribute("aria-invalid", String(problem?.field === field));
  }
  resize();
}

function resize(): void {
  tell({ kind: "resize", height: Math.ceil(document.documentElement.getBoundingClientRect().height) });
}

function changedCard(): void {
  const typed = input();
  const brand = detectBrand(typed.number);
  const label = document.getElementById("brand") as HTMLElement;
  label.textContent = brand === "unknown" ? "" : brand;
  label.dataset.brand = brand;
  $("cvc").maxLength = cvcLength(brand);
  const now = new Date();
  const problem = validateCard(typed, now, true);
  show(problem);
  const empty = !typed.number && !typed.expiry && !typed.cvc;
  tell({
    kind: "change",
    complete: validateCard(typed, now) === null,
    empty,
    brand,
    method: "card",
    error: problem ? { type: "validation_error", code: problem.code, message: problem.message } : undefined,
  });
}

function upiFlow(): UpiFlow {
  return $("upi-collect").checked ? "collect" : "intent";
}

function changedUpi(): void {
  const collect = upiFlow() === "collect";
  (document.getElementById("vpa-box") as HTMLElement).hidden = !collect;
  const problem = collect ? validateVpa($("vpa").value, true) : null;
  showUpi(problem?.message ?? "");
  tell({
    kind: "change",
    complete: !collect || validateVpa($("vpa").value) === null,
    empty: collect && !$("vpa").value,
    brand: "upi",
    method: "upi",
    error: problem ? { type: "validation_error", ...problem } : undefined,
  });
}

function showUpi(message: string): void {
  (document.getElementById("upi-error") as HTMLElement).textContent = message;
  $("vpa").classList.toggle("invalid", Boolean(message));
  $("vpa").setAttribute("aria-invalid", String(Boolean(message)));
  resize();
}

function changed(): void {
  if (method === "card") changedCard();
  else if (method === "upi") changedUpi();
  else tell({ kind: "change", complete: true, empty: false, brand: "wallet", method: "wallet" });
}

function select(chosen: Method): void {
  method = chosen;
  (document.getElementById("card") as HTMLElement).hidden = chosen !== "card";
  (document.getElementById("upi") as HTMLElement).hidden = chosen !== "upi";
  (document.getElementById("wallet") as HTMLElement).hidden = chosen !== "wallet";
  for (const button of document.querySelectorAll<HTMLButtonElement>(".method")) {
    button.setAttribute("aria-checked", String(button.dataset.method === chosen));
  }
  changed();
  resize();
}

async function tokenize(billing?: Record<string, unknown>): Promise<ApiResult> {
  if (method === "upi") return tokenizeUpi(billing);
  if (method === "wallet") {
    return { body: { id: WALLET_PAYMENT_METHOD, object: "payment_method", type: "card", wallet: "payflow_wallet" } };
  }
  const typed = input();
  const problem = validateCard(typed, new Date());
  if (problem) {
    show(problem);
    $(problem.field).focus();
    return { error: { type: "validation_error", code: problem.code, message: problem.message } };
  }
  const result = await call(apiBase, key, "POST", "v1/payment_methods", {
    type: "card",
    card: cardFields(typed),
    billing_details: billing,
  });
  if (result.error) {
    show({ field: fieldOfParam(result.error.param), code: result.error.code ?? "", message: result.error.message ?? "" });
    return result;
  }
  const pm = result.body as { id: string; type: string; card?: Record<string, unknown> };
  // Only what a merchant may keep: the id, the brand and last four digits.
  return { body: { id: pm.id, object: "payment_method", type: pm.type, card: pm.card } };
}

async function tokenizeUpi(billing?: Record<string, unknown>): Promise<ApiResult> {
  const collect = upiFlow() === "collect";
  const vpa = $("vpa").value.trim();
  const problem = collect ? validateVpa(vpa) : null;
  if (problem) {
    showUpi(problem.message);
    $("vpa").focus();
    return { error: { type: "validation_error", ...problem } };
  }
  const result = await call(apiBase, key, "POST", "v1/payment_methods", {
    type: "upi",
    upi: collect ? { vpa } : undefined,
    billing_details: billing,
  });
  if (result.error) {
    showUpi(result.error.message ?? "");
    return result;
  }
  const pm = result.body as { id: string; type: string; upi?: Record<string, unknown> };
  return { body: { id: pm.id, object: "payment_method", type: pm.type, upi: pm.upi } };
}

function fieldOfParam(param: string | undefined): CardError["field"] {
  if (param?.includes("exp")) return "expiry";
  if (param?.includes("cvc")) return "cvc";
  return "number";
}

async function answer(request: Request): Promise<ApiResult> {
  switch (request.kind) {
    case "tokenize":
      return role === "payment" ? tokenize(request.billing_details) : refused();
    case "retrieve":
      return call(apiBase, key, "GET", `v1/${request.intent}/${encodeURIComponent(idOf(request.client_secret))}`, {
        client_secret: request.client_secret,
      });
    case "confirm":
      return call(apiBase, key, "POST", `v1/${request.intent}/${encodeURIComponent(idOf(request.client_secret))}/confirm`, {
        client_secret: request.client_secret,
        payment_method: request.payment_method,
        return_url: request.return_url,
      });
    case "focus":
      if (role === "payment") $(method === "upi" ? "vpa" : "number").focus();
      return { body: {} };
    case "clear":
      if (role === "payment") for (const field of ["number", "expiry", "cvc", "vpa"]) $(field).value = "";
      changed();
      return { body: {} };
  }
}

function refused(): ApiResult {
  return { error: { type: "invalid_request_error", message: "This frame does not take that request." } };
}

function idOf(clientSecret: string): string {
  return clientSecret.split("_secret_")[0];
}

window.addEventListener("message", (event) => {
  const request = accept<Request>(event, parentOrigin, window.parent);
  if (request === null) return;
  void answer(request).then((result) => tell({ kind: "reply", id: request.id, ...result }));
});

function setUpCardForm(): void {
  // Enter in a field must not reload the frame; the merchant's button confirms.
  document.getElementById("card")?.addEventListener("submit", (event) => event.preventDefault());
  const number = $("number");
  number.maxLength = MAX_DIGITS + 4;
  number.addEventListener("input", () => {
    number.value = formatNumber(number.value);
    changed();
  });
  const expiry = $("expiry");
  expiry.addEventListener("input", (event) => {
    const deleting = (event as InputEvent).inputType?.startsWith("delete");
    if (!deleting) expiry.value = formatExpiry(expiry.value);
    changed();
  });
  const cvc = $("cvc");
  cvc.addEventListener("input", () => {
    cvc.value = cvc.value.replace(/\D/g, "");
    changed();
  });
  new ResizeObserver(resize).observe(document.body);
}

function setUpMethods(): void {
  const tabs = document.getElementById("methods") as HTMLElement;
  tabs.hidden = methods.length < 2;
  for (const button of tabs.querySelectorAll<HTMLButtonElement>(".method")) {
    button.hidden = !methods.includes(button.dataset.method as Method);
    button.addEventListener("click", () => select(button.dataset.method as Method));
  }
  document.getElementById("upi")?.addEventListener("submit", (event) => event.preventDefault());
  for (const id of ["upi-intent", "upi-collect"]) $(id).addEventListener("change", changed);
  $("vpa").addEventListener("input", changed);
  // A card-only element shows as it always has; its first change comes with the first key.
  if (methods.length > 1 || method !== "card") select(method);
}

if (role === "payment") {
  setUpCardForm();
  setUpMethods();
} else {
  document.body.replaceChildren();
}
tell({ kind: "ready" });
resize();
