// What the payment element checks of a UPI ID (a VPA) before PayFlow sees it, and what a UPI or
// wallet next_action asks the customer to do. Pure functions: tested without a browser.

export type UpiFlow = "intent" | "collect";

export interface VpaError {
  code: string;
  message: string;
}

// A handle, "@", the payment service's name: as PayFlow's API checks it (upi[vpa]).
const VPA = /^[A-Za-z0-9][A-Za-z0-9._-]{1,255}@[A-Za-z][A-Za-z0-9]{1,63}$/;

/** Why `vpa` is not a UPI ID the customer can be sent a request at, or null when it is. */
export function validateVpa(vpa: string, partial = false): VpaError | null {
  const value = vpa.trim();
  if (!value) {
    return partial ? null : { code: "incomplete_vpa", message: "Enter your UPI ID, such as name@okaxis." };
  }
  if (/[^A-Za-z0-9._@-]/.test(value)) {
    return { code: "invalid_vpa", message: "A UPI ID has letters, digits, dots, dashes and one @ only." };
  }
  if (!value.includes("@")) {
    return partial ? null : { code: "invalid_vpa", message: "A UPI ID has an @ and your bank's or app's name after it." };
  }
  if (!VPA.test(value)) {
    return { code: "invalid_vpa", message: "This UPI ID is not valid: it looks like name@bank." };
  }
  return null;
}

/** What a next_action waits for: a UPI app (QR code or collect request), a wallet's page. */
export function customerActionOf(
  action: Record<string, any> | null | undefined,
): { kind: "upi_intent" | "upi_collect" | "wallet"; url?: string; expiresAt?: number; uri?: string } | null {
  if (!action) return null;
  const sdk = action.use_stripe_sdk ?? {};
  if (action.type === "upi_handle_redirect_or_display_qr_code") {
    const shown = action.upi_handle_redirect_or_display_qr_code ?? {};
    return {
      kind: "upi_intent",
      url: shown.hosted_instructions_url,
      expiresAt: shown.qr_code?.expires_at,
      uri: sdk.payflow_upi_uri,
    };
  }
  if (action.type === "upi_await_notification") {
    return { kind: "upi_collect", url: sdk.payflow_hosted_url, expiresAt: sdk.payflow_expires_at };
  }
  const url = action.redirect_to_url?.url;
  if (action.type === "redirect_to_url" && typeof url === "string" && url.endsWith("/customer_action")) {
    return { kind: "wallet", url };
  }
  return null;
}

/** "9:59" for the seconds left until `expiresAt` (epoch seconds); "0:00" once passed. */
export function countdown(expiresAt: number, nowMs: number): string {
  const left = Math.max(0, Math.floor(expiresAt - nowMs / 1000));
  return `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}
