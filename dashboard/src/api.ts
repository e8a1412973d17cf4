// The public API as the dashboard reads it: the merchant's secret key on every call, Stripe's
// form encoding on writes, and Stripe-shaped errors turned into ApiError.

const SESSION_KEY = "payflow.dashboard.secret_key";
const SESSION_ADMIN = "payflow.dashboard.admin_key";

/** The API's root: the page is served at <root>/dashboard (a stage prefix on AWS, none locally). */
export const apiRoot: string = location.pathname.replace(/\/dashboard\/?$/, "");

export interface StripeError {
  type: string;
  code?: string;
  message: string;
  param?: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly error: StripeError;

  constructor(status: number, error: StripeError) {
    super(error.message);
    this.status = status;
    this.error = error;
  }
}

export interface List<T> {
  object: "list" | "search_result";
  data: T[];
  has_more: boolean;
  next_page?: string | null;
}

export type Params = Record<string, unknown>;

export const keys = {
  secret: (): string | null => sessionStorage.getItem(SESSION_KEY),
  admin: (): string | null => sessionStorage.getItem(SESSION_ADMIN),
  save(secret: string, admin: string): void {
    sessionStorage.setItem(SESSION_KEY, secret);
    if (admin) sessionStorage.setItem(SESSION_ADMIN, admin);
    else sessionStorage.removeItem(SESSION_ADMIN);
  },
  clear(): void {
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(SESSION_ADMIN);
  },
};

/** Stripe's bracket encoding: metadata[k]=v, list[0]=a, booleans as true/false. */
export function formEncode(params: Params, prefix = "", out = new URLSearchParams()): URLSearchParams {
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null) continue;
    const key = prefix ? `${prefix}[${name}]` : name;
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        if (item !== null && typeof item === "object") formEncode(item as Params, `${key}[${i}]`, out);
        else out.append(`${key}[${i}]`, String(item));
      });
    } else if (typeof value === "object") {
      formEncode(value as Params, key, out);
    } else {
      out.append(key, String(value));
    }
  }
  return out;
}

async function send<T>(url: string, init: RequestInit): Promise<T> {
  const response = await fetch(url, init);
  const json = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error: StripeError = json.error ?? { type: "api_error", message: `HTTP ${response.status}` };
    throw new ApiError(response.status, error);
  }
  return json as T;
}

/** One read-only GraphQL query (POST /graphql, JSON); its `errors`, if any, become an ApiError. */
export async function graphql<T>(query: string, variables: Params = {}): Promise<T> {
  const key = keys.secret();
  if (!key) throw new ApiError(401, { type: "invalid_request_error", message: "Not signed in." });
  // No Idempotency-Key: a read has nothing to replay, and polling would store one per call.
  const body = await send<{ data?: T; errors?: { message: string }[] }>(`${apiRoot}/graphql`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  if (body.errors?.length || !body.data) {
    throw new ApiError(400, { type: "invalid_request_error", message: body.errors?.map((e) => e.message).join("; ") ?? "No data." });
  }
  return body.data;
}

async function call<T>(method: string, path: string, params: Params = {}, admin = false): Promise<T> {
  const key = admin ? keys.admin() : keys.secret();
  if (!key) throw new ApiError(401, { type: "invalid_request_error", message: admin ? "This needs the admin key: sign in with it." : "Not signed in." });
  const headers: Record<string, string> = { Authorization: `Bearer ${key}` };
  let url = apiRoot + path;
  let body: string | undefined;
  const encoded = formEncode(params);
  if (method === "GET") {
    const query = encoded.toString();
    if (query) url += (url.includes("?") ? "&" : "?") + query;
  } else {
    body = encoded.toString();
    headers["Content-Type"] = "application/x-www-form-urlencoded";
    // Every write is safe to send twice: a retried click replays instead of acting again.
    headers["Idempotency-Key"] = crypto.randomUUID();
  }
  return send<T>(url, { method, headers, body });
}

export const api = {
  get: <T>(path: string, params?: Params): Promise<T> => call<T>("GET", path, params),
  post: <T>(path: string, params?: Params): Promise<T> => call<T>("POST", path, params),
  del: <T>(path: string): Promise<T> => call<T>("DELETE", path),
  adminGet: <T>(path: string, params?: Params): Promise<T> => call<T>("GET", path, params, true),
  adminPost: <T>(path: string, params?: Params): Promise<T> => call<T>("POST", path, params, true),
};

/** Every page of a list, up to `max` objects (the API's own cursor). */
export async function listAll<T extends { id: string }>(path: string, params: Params = {}, max = 500): Promise<T[]> {
  const out: T[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await api.get<List<T>>(path, { ...params, limit: 100, starting_after: after });
    out.push(...page.data);
    if (!page.has_more || page.data.length === 0 || out.length >= max) return out;
    after = page.data[page.data.length - 1].id;
  }
}

// The objects' fields the pages read (the API returns more).

export interface PaymentError {
  code?: string;
  decline_code?: string;
  message?: string;
  type?: string;
}

export interface PaymentIntent {
  id: string;
  amount: number;
  amount_capturable: number;
  amount_received: number;
  currency: string;
  status: string;
  capture_method: string;
  created: number;
  description: string | null;
  metadata: Record<string, string>;
  latest_charge: string | null;
  customer: string | null;
  last_payment_error: PaymentError | null;
  payment_method_types: string[];
}

export interface Charge {
  id: string;
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  currency: string;
  status: string;
  created: number;
  captured: boolean;
  failure_code: string | null;
  failure_message: string | null;
  balance_transaction: string | null;
  disputed?: boolean;
  payment_method_details?: { type?: string; card?: { brand?: string; last4?: string } } | null;
}

export interface Refund {
  id: string;
  amount: number;
  currency: string;
  status: string;
  created: number;
  reason: string | null;
  failure_reason?: string | null;
}

export interface StripeEvent {
  id: string;
  type: string;
  created: number;
  pending_webhooks: number;
  data: { object: { id?: string; object?: string; status?: string } & Record<string, unknown> };
}

export interface DeliveryAttempt {
  attempt: number;
  created: number;
  trigger: string;
  status_code: number | null;
  latency_ms: number;
  response: string | null;
  error: string | null;
  url: string;
}

export interface Delivery {
  id: string;
  event: string;
  event_type?: string;
  webhook_endpoint: string;
  status: string;
  attempt_count: number;
  next_attempt_at: number | null;
  created: number;
  attempts: DeliveryAttempt[];
}

export interface BalanceTransaction {
  id: string;
  amount: number;
  fee: number;
  net: number;
  currency: string;
  type: string;
  status: string;
  created: number;
  source: string;
}

/** A reconciliation of one day (GET /v1/reconciliation/runs). */
export interface ReconciliationRun {
  id: string;
  created: number;
  date: string;
  sla_days: number;
  status: "running" | "succeeded" | "failed";
  completed_at: number | null;
  providers: string[];
  skipped_providers: Record<string, string>;
  counts: { rows: number; matched: number; exceptions: number; repaired: number; awaiting_settlement: number; payouts: number };
  exceptions_by_kind: Record<string, number>;
  /** Provider fees the run booked, per currency, in minor units. */
  fees: Record<string, number>;
  failure: string | null;
}

/** What did not match (GET /v1/reconciliation/exceptions): amounts signed, in minor units. */
export interface ReconciliationException {
  id: string;
  created: number;
  run: string;
  kind: string;
  status: "open" | "repaired" | "resolved";
  provider: string;
  subject: string;
  settlement_line: string | null;
  object_id: string | null;
  payment_intent: string | null;
  psp_reference: string | null;
  currency: string;
  provider_amount: number;
  payflow_amount: number;
  payflow_currency: string;
  difference: number;
  repair: string | null;
  repair_error: string | null;
  resolution: string | null;
  resolved_at: number | null;
  ledger_entries: string[];
}

export interface Dispute {
  id: string;
  amount: number;
  currency: string;
  status: string;
  reason: string;
  charge: string;
  payment_intent: string | null;
  created: number;
  is_charge_refundable: boolean;
  metadata: Record<string, string>;
  evidence: Record<string, string | null>;
  evidence_details: { due_by: number | null; has_evidence: boolean; past_due: boolean; submission_count: number };
  balance_transactions: BalanceTransaction[];
  payment_method_details?: { card?: { brand?: string; case_type?: string; network_reason_code?: string | null } };
}
