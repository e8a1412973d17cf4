// PayFlow's API as PayFlow's own frames call it: same origin, the publishable key as bearer,
// Stripe's form encoding. The merchant's page never calls the API itself (no CORS needed).

import { formEncode, type StripeError } from "./protocol";

export interface ApiResult {
  body?: Record<string, unknown>;
  error?: StripeError;
}

/** The API's base URL for a frame served at `framePath` levels below it. */
export function apiBaseOf(location: Location | URL, levels: number): string {
  return new URL("../".repeat(levels), location.href).toString();
}

export async function call(
  apiBase: string,
  key: string,
  method: "GET" | "POST",
  path: string,
  params: Record<string, unknown>,
): Promise<ApiResult> {
  const url = new URL(path, apiBase);
  const init: RequestInit = { method, headers: { Authorization: `Bearer ${key}` } };
  if (method === "GET") {
    url.search = formEncode(params);
  } else {
    init.body = formEncode(params);
    (init.headers as Record<string, string>)["Content-Type"] = "application/x-www-form-urlencoded";
  }
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch {
    return { error: { type: "api_connection_error", message: "PayFlow could not be reached." } };
  }
  const body = (await response.json().catch(() => null)) as Record<string, unknown> | null;
  if (!response.ok || body === null) {
    const error = (body?.error as StripeError | undefined) ?? {
      type: "api_error",
      message: `PayFlow answered ${response.status}.`,
    };
    return { error };
  }
  return { body };
}
