// PayFlow's page for a payment that waits for its customer at the simulator, served at
// /v1/sandbox/payment_intents/{id}/customer_action?client_secret=&key=&mode=: the UPI QR code
// and deep link, a collect request's countdown, or PayFlow Wallet's approval. The two buttons
// play the customer's phone (sandbox only). Either way the page only watches the PaymentIntent:
// it moves when the simulator's webhook reaches PayFlow (approval, refusal, or expiry), and then
// the page tells the SDK (modal) or sends the customer to the return_url (redirect).

import { apiBaseOf, call } from "./api";
import { money } from "./money";
import { envelope, returnUrl } from "./protocol";
import { countdown, customerActionOf } from "./upi";

const query = new URLSearchParams(location.search);
const clientSecret = query.get("client_secret") ?? "";
const key = query.get("key") ?? "";
const modal = query.get("mode") === "modal";
const parentOrigin = query.get("origin") ?? "";
const intentId = /\/payment_intents\/([A-Za-z0-9_]+)\/customer_action$/.exec(location.pathname)?.[1] ?? "";
// Four levels below the API's root (v1/sandbox/payment_intents/<id>/customer_action).
const apiBase = apiBaseOf(location, 4);
const POLL_MS = 500;
if (modal) document.documentElement.classList.add("modal");

const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;
const buttons = [$("approve"), $("refuse")] as HTMLButtonElement[];

interface Intent {
  id: string;
  client_secret: string;
  status: string;
  amount: number;
  currency: string;
  next_action?: Record<string, any> | null;
  last_payment_error?: { message?: string } | null;
}

async function retrieve(): Promise<Intent | null> {
  const result = await call(apiBase, key, "GET", `v1/payment_intents/${intentId}`, { client_secret: clientSecret });
  if (result.error) {
    $("error").textContent = result.error.message ?? "This payment could not be found.";
    return null;
  }
  return result.body as unknown as Intent;
}

function finish(intent: Intent, returnTo: string | undefined): void {
  const ok = intent.status === "succeeded" || intent.status === "requires_capture";
  $("status").textContent = ok ? "Payment approved." : intent.last_payment_error?.message ?? `The payment is ${intent.status}.`;
  for (const b of buttons) b.disabled = true;
  if (modal) {
    if (parentOrigin) {
      window.parent.postMessage(envelope({ kind: "challenge_done", outcome: ok ? "succeeded" : "failed" }), parentOrigin);
    }
    return;
  }
  if (returnTo) location.assign(returnUrl(returnTo, "payment_intents", intent));
}

function show(intent: Intent): void {
  const waiting = customerActionOf(intent.next_action);
  const price = money(intent.amount, intent.currency);
  if (waiting?.kind === "upi_intent") {
    $("title").textContent = "Pay with UPI";
    $("summary").textContent = `Scan the code with any UPI app to pay ${price}.`;
    const qr = $("qr") as HTMLImageElement;
    qr.src = intent.next_action?.upi_handle_redirect_or_display_qr_code?.qr_code?.image_url_svg ?? "";
    qr.hidden = false;
    if (waiting.uri) {
      const link = $("deeplink") as HTMLAnchorElement;
      link.href = waiting.uri;
      link.hidden = false;
    }
    buttons[0].textContent = "Approve in the UPI app";
    buttons[1].textContent = "Refuse in the UPI app";
  } else if (waiting?.kind === "upi_collect") {
    $("title").textContent = "Approve in your UPI app";
    $("summary").textContent = `A request to pay ${price} was sent to your UPI ID. Open your UPI app to approve it.`;
    buttons[0].textContent = "Approve the request";
    buttons[1].textContent = "Decline the request";
  } else {
    $("title").textContent = "PayFlow Wallet";
    $("summary").textContent = `Pay ${price} from your PayFlow Wallet?`;
    $("hint").textContent = "This page stands in for the wallet's own approval page.";
    buttons[0].textContent = "Approve payment";
    buttons[1].textContent = "Decline";
  }
  const expiresAt = waiting?.expiresAt;
  if (expiresAt) {
    const tick = (): void => {
      $("expiry").textContent = `Expires in ${countdown(expiresAt, Date.now())}`;
    };
    tick();
    setInterval(tick, 1000);
  }
}

async function main(): Promise<void> {
  const first = await retrieve();
  if (first === null) return;
  const returnTo: string | undefined = first.next_action?.redirect_to_url?.return_url ?? undefined;
  if (first.status !== "requires_action" || customerActionOf(first.next_action) === null) {
    $("summary").textContent = `This payment waits for nothing from its customer now (${first.status}).`;
    finish(first, returnTo);
    return;
  }
  show(first);
  for (const button of buttons) {
    button.disabled = false;
    button.addEventListener("click", async () => {
      for (const b of buttons) b.disabled = true;
      const outcome = button.id === "approve" ? "approve" : "refuse";
      const done = await call(apiBase, key, "POST", `v1/sandbox/payment_intents/${intentId}/customer_action`, {
        outcome,
        client_secret: clientSecret,
      });
      if (done.error) {
        $("error").textContent = done.error.message ?? "The answer could not be recorded.";
        return;
      }
      $("status").textContent = "Waiting for the payment service to confirm…";
    });
  }
  // The outcome may come from elsewhere too (the customer's own phone, or expiry): watch.
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    const now = await retrieve();
    if (now !== null && now.status !== "requires_action") {
      finish(now, returnTo);
      return;
    }
  }
}

void main();
