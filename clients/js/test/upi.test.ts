import { describe, expect, it } from "vitest";

import { challengeUrl } from "../src/protocol";
import { countdown, customerActionOf, validateVpa } from "../src/upi";

describe("UPI IDs", () => {
  it("takes a handle at a payment service", () => {
    for (const vpa of ["customer@okaxis", "a.b-c_d@ybl", "9876543210@paytm"]) expect(validateVpa(vpa)).toBeNull();
  });

  it("refuses what is not one, with a message for the customer", () => {
    expect(validateVpa("")?.code).toBe("incomplete_vpa");
    expect(validateVpa("customer")?.code).toBe("invalid_vpa");
    expect(validateVpa("customer@")?.code).toBe("invalid_vpa");
    expect(validateVpa("cust omer@okaxis")?.code).toBe("invalid_vpa");
    expect(validateVpa("a@okaxis")?.code).toBe("invalid_vpa");
  });

  it("does not scold a customer still typing", () => {
    expect(validateVpa("", true)).toBeNull();
    expect(validateVpa("custo", true)).toBeNull();
    expect(validateVpa("cust omer", true)?.code).toBe("invalid_vpa");
  });
});

describe("next actions that wait for the customer", () => {
  const intent = {
    type: "upi_handle_redirect_or_display_qr_code",
    upi_handle_redirect_or_display_qr_code: {
      hosted_instructions_url: "/v1/sandbox/payment_intents/pi_1/customer_action",
      qr_code: { expires_at: 1_800_000_600, image_url_png: "data:", image_url_svg: "data:" },
    },
    use_stripe_sdk: { type: "payflow_upi_intent", payflow_upi_uri: "upi://pay?pa=x" },
  };

  it("reads a UPI intent, a collect request and a wallet's page", () => {
    expect(customerActionOf(intent)).toEqual({
      kind: "upi_intent",
      url: "/v1/sandbox/payment_intents/pi_1/customer_action",
      expiresAt: 1_800_000_600,
      uri: "upi://pay?pa=x",
    });
    const collect = { type: "upi_await_notification", use_stripe_sdk: { payflow_hosted_url: "/c", payflow_expires_at: 5 } };
    expect(customerActionOf(collect)).toEqual({ kind: "upi_collect", url: "/c", expiresAt: 5 });
    const wallet = { type: "redirect_to_url", redirect_to_url: { url: "/v1/sandbox/payment_intents/pi_1/customer_action" } };
    expect(customerActionOf(wallet)?.kind).toBe("wallet");
    const bank = { type: "redirect_to_url", redirect_to_url: { url: "https://bank.example/3ds" } };
    expect(customerActionOf(bank)).toBeNull();
    expect(customerActionOf(null)).toBeNull();
  });

  it("sends the customer to PayFlow's page for it", () => {
    const url = challengeUrl("http://pay/", { id: "pi_1", next_action: intent }, "payment_intents", {
      key: "pk_test_1",
      client_secret: "pi_1_secret_2",
      mode: "modal",
    });
    expect(url).toBe(
      "http://pay/v1/sandbox/payment_intents/pi_1/customer_action?client_secret=pi_1_secret_2&key=pk_test_1&mode=modal",
    );
  });

  it("counts down to the expiry", () => {
    expect(countdown(1_000_600, 1_000_000_000)).toBe("10:00");
    expect(countdown(1_000_065, 1_000_000_000)).toBe("1:05");
    expect(countdown(1_000_000, 1_000_500_000)).toBe("0:00");
  });
});
