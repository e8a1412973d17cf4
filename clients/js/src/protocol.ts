// What the merchant's page and PayFlow's frames say to each other over postMessage, and the
// checks both sides make before they believe a message: the sender's origin AND the window it
// came from. Card data is never in a message: the payment frame answers with a PaymentMethod.

export const CHANNEL = "payflow.v1";

export type IntentKind = "payment_intents" | "setup_intents";

export interface StripeError {
  type: string;
  code?: string;
  decline_code?: string;
  message?: string;
  param?: string;
  payment_intent?: unknown;
  setup_intent?: unknown;
  [more: string]: unknown;
}

/** Merchant page -> a PayFlow frame. */
export type Request =
  | { kind: "tokenize"; id: number; billing_details?: Record<string, unknown> }
  | { kind: "retrieve"; id: number; intent: IntentKind; client_secret: string }
  | {
      kind: "confirm";
      id: number;
      intent: IntentKind;
      client_secret: string;
      payment_method: string;
      return_url?: string;
    }
  | { kind: "focus"; id: number }
  | { kind: "clear"; id: number };

/** A PayFlow frame -> the merchant page. */
export type Notice =
  | { kind: "ready" }
  | { kind: "resize"; height: number }
  | {
      kind: "change";
      complete: boolean;
      empty: boolean;
      brand: string;
      /** The method the customer chose in the element: card, upi or wallet. */
      method?: string;
      error?: { type: string; code: string; message: string };
    }
  | { kind: "reply"; id: number; body?: Record<string, unknown>; error?: StripeError }
  | { kind: "challenge_done"; outcome: "succeeded" | "failed" };

export interface Envelope<T> {
  channel: typeof CHANNEL;
  message: T;
}

export function envelope<T>(message: T): Envelope<T> {
  return { channel: CHANNEL, message };
}

interface Incoming {
  origin: string;
  source: unknown;
  data: unknown;
}

/** The message of an event from `expectedSource` at `expectedOrigin`, else null (ignored). */
export function accept<T>(event: Incoming, expectedOrigin: string, expectedSource: unknown): T | null {
  if (event.origin !== expectedOrigin || event.source !== expectedSource || !expectedSource) {
    return null;
  }
  const data = event.data as Partial<Envelope<T>> | null;
  if (!data || typeof data !== "object" || data.channel !== CHANNEL || !data.message) return null;
  return data.message;
}

/** The intent a client_secret belongs to: `pi_123_secret_abc` -> ("payment_intents", "pi_123"). */
export function intentOf(clientSecret: string): { intent: IntentKind; id: string } | null {
  const match = /^((pi|seti)_[A-Za-z0-9]+)_secret_[A-Za-z0-9]+$/.exec(clientSecret);
  if (!match) return null;
  return { intent: match[2] === "pi" ? "payment_intents" : "setup_intents", id: match[1] };
}

/** Stripe's form encoding with bracket nesting: {card: {number: "4"}} -> "card[number]=4". */
export function formEncode(params: Record<string, unknown>): string {
  const parts: string[] = [];
  const walk = (prefix: string, value: unknown): void => {
    if (value === undefined || value === null) return;
    if (typeof value === "object") {
      for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
        walk(prefix ? `${prefix}[${key}]` : key, inner);
      }
      return;
    }
    parts.push(`${encodeURIComponent(prefix)}=${encodeURIComponent(String(value))}`);
  };
  walk("", params);
  return parts.join("&");
}

/** The origin of a URL ("http://127.0.0.1:8000/js/v1/" -> "http://127.0.0.1:8000"). */
export function originOf(url: string): string {
  return new URL(url).origin;
}

/** Where the customer completes 3-D Secure, or approves in a UPI app or a wallet (PayFlow's
 * page for that): the intent's own next_action URL when it has one,
 * else the sandbox's authenticate page for the intent, with what the page needs to act. */
export function challengeUrl(
  apiBase: string,
  intent: { id: string; next_action?: Record<string, any> | null },
  kind: IntentKind,
  params: { key: string; client_secret: string; mode: "modal" | "redirect"; origin?: string },
): string {
  const action = intent.next_action ?? {};
  const given: unknown =
    action.redirect_to_url?.url ??
    action.upi_handle_redirect_or_display_qr_code?.hosted_instructions_url ??
    action.use_stripe_sdk?.payflow_hosted_url ??
    action.use_stripe_sdk?.stripe_js ??
    undefined;
  const fallback = `v1/sandbox/${kind}/${intent.id}/authenticate`;
  const url = new URL(typeof given === "string" ? given : fallback, withSlash(apiBase));
  const query = new URLSearchParams({ client_secret: params.client_secret, key: params.key, mode: params.mode });
  if (params.origin) query.set("origin", params.origin);
  url.search = query.toString();
  return url.toString();
}

export function withSlash(base: string): string {
  return base.endsWith("/") ? base : `${base}/`;
}

/** Stripe's redirect back to the merchant: the return_url with the intent and its outcome. */
export function returnUrl(
  returnTo: string,
  kind: IntentKind,
  intent: { id: string; client_secret: string; status: string },
): string {
  const url = new URL(returnTo);
  const prefix = kind === "payment_intents" ? "payment_intent" : "setup_intent";
  url.searchParams.set(prefix, intent.id);
  url.searchParams.set(`${prefix}_client_secret`, intent.client_secret);
  const ok = ["succeeded", "processing", "requires_capture"].includes(intent.status);
  url.searchParams.set("redirect_status", ok ? "succeeded" : "failed");
  return url.toString();
}
