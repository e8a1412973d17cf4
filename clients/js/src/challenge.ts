// The sandbox's 3-D Secure page, served by PayFlow at
// /v1/sandbox/{payment_intents|setup_intents}/{id}/authenticate?client_secret=&key=&mode=.
// It plays the customer's bank: Complete or Fail calls the same authenticate route the API
// offers, with the publishable key and the intent's client_secret. In a modal it tells its
// parent (the SDK) it is done; after a redirect it sends the customer to the return_url.

import { apiBaseOf, call } from "./api";
import { money } from "./money";
import { envelope, returnUrl, type IntentKind } from "./protocol";

const query = new URLSearchParams(location.search);
const clientSecret = query.get("client_secret") ?? "";
const key = query.get("key") ?? "";
const modal = query.get("mode") === "modal";
const parentOrigin = query.get("origin") ?? "";
const path = /\/(payment_intents|setup_intents)\/([A-Za-z0-9_]+)\/authenticate$/.exec(location.pathname);
const kind = (path?.[1] ?? "payment_intents") as IntentKind;
const intentId = path?.[2] ?? "";
// This page is four levels below the API's root (v1/sandbox/<kind>/<id>/authenticate).
const apiBase = apiBaseOf(location, 4);
if (modal) document.documentElement.classList.add("modal");

const summary = document.getElementById("summary") as HTMLElement;
const problem = document.getElementById("error") as HTMLElement;
const buttons = [document.getElementById("complete"), document.getElementById("fail")] as HTMLButtonElement[];

interface Intent {
  id: string;
  client_secret: string;
  status: string;
  amount?: number;
  currency?: string;
  next_action?: { redirect_to_url?: { return_url?: string } } | null;
}

async function retrieve(): Promise<Intent | null> {
  const result = await call(apiBase, key, "GET", `v1/${kind}/${intentId}`, { client_secret: clientSecret });
  if (result.error) {
    problem.textContent = result.error.message ?? "This payment could not be found.";
    return null;
  }
  return result.body as unknown as Intent;
}

function finish(intent: Intent | null, outcome: "succeeded" | "failed", returnTo: string | undefined): void {
  if (modal) {
    if (parentOrigin) window.parent.postMessage(envelope({ kind: "challenge_done", outcome }), parentOrigin);
    return;
  }
  if (returnTo && intent) {
    location.assign(returnUrl(returnTo, kind, intent));
    return;
  }
  summary.textContent = outcome === "succeeded" ? "Authentication completed." : "Authentication failed.";
}

async function main(): Promise<void> {
  const intent = await retrieve();
  if (intent === null) return;
  const returnTo = intent.next_action?.redirect_to_url?.return_url;
  summary.textContent =
    kind === "payment_intents" && intent.amount !== undefined && intent.currency
      ? `Confirm a payment of ${money(intent.amount, intent.currency)}.`
      : "Confirm that this card may be saved for later payments.";
  if (intent.status !== "requires_action") {
    summary.textContent = `This ${kind === "payment_intents" ? "payment" : "setup"} needs no authentication now (${intent.status}).`;
    finish(intent, "failed", returnTo);
    return;
  }
  for (const button of buttons) {
    button.disabled = false;
    button.addEventListener("click", async () => {
      for (const b of buttons) b.disabled = true;
      const outcome = button.id === "complete" ? "succeeded" : "failed";
      const done = await call(apiBase, key, "POST", `v1/sandbox/${kind}/${intentId}/authenticate`, {
        outcome,
        client_secret: clientSecret,
      });
      // A failed authentication is answered as a decline (402, card_error): that is the
      // bank's answer recorded, not a problem with this page.
      if (done.error && done.error.type !== "card_error") {
        problem.textContent = done.error.message ?? "The authentication could not be recorded.";
        for (const b of buttons) b.disabled = false;
        return;
      }
      const after = done.body ? (done.body as unknown as Intent) : await retrieve();
      finish(after, outcome, returnTo);
    });
  }
}

void main();
