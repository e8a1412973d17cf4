import { describe, expect, it } from "vitest";

import { money } from "../src/money";
import { accept, challengeUrl, envelope, formEncode, intentOf, returnUrl } from "../src/protocol";

describe("postMessage checks", () => {
  const frame = { name: "the PayFlow frame" };
  const message = envelope({ kind: "ready" });

  it("believes only the expected window at the expected origin", () => {
    expect(accept({ origin: "http://pay", source: frame, data: message }, "http://pay", frame)).toEqual({ kind: "ready" });
    expect(accept({ origin: "http://evil", source: frame, data: message }, "http://pay", frame)).toBeNull();
    expect(accept({ origin: "http://pay", source: {}, data: message }, "http://pay", frame)).toBeNull();
    expect(accept({ origin: "http://pay", source: null, data: message }, "http://pay", null)).toBeNull();
  });

  it("ignores messages of other channels and garbage", () => {
    for (const data of [null, "x", { kind: "ready" }, { channel: "other", message: { kind: "ready" } }]) {
      expect(accept({ origin: "http://pay", source: frame, data }, "http://pay", frame)).toBeNull();
    }
  });
});

describe("intents and URLs", () => {
  it("reads the intent out of its client secret", () => {
    expect(intentOf("pi_3Abc_secret_xyz")).toEqual({ intent: "payment_intents", id: "pi_3Abc" });
    expect(intentOf("seti_9_secret_q")).toEqual({ intent: "setup_intents", id: "seti_9" });
    expect(intentOf("pi_3Abc")).toBeNull();
    expect(intentOf("cus_1_secret_2")).toBeNull();
    expect(intentOf("pi_1/../x_secret_2")).toBeNull();
  });

  it("encodes parameters as Stripe does", () => {
    expect(formEncode({ type: "card", card: { number: "4242", exp_month: 12 }, skip: undefined })).toBe(
      "type=card&card%5Bnumber%5D=4242&card%5Bexp_month%5D=12",
    );
    expect(formEncode({ return_url: "https://shop/done?a=1&b=2" })).toBe("return_url=https%3A%2F%2Fshop%2Fdone%3Fa%3D1%26b%3D2");
  });

  it("sends the customer to the intent's challenge page with what it needs", () => {
    const pi = { id: "pi_1", next_action: { type: "redirect_to_url", redirect_to_url: { url: "/v1/sandbox/payment_intents/pi_1/authenticate" } } };
    const url = new URL(
      challengeUrl("http://127.0.0.1:8000", pi, "payment_intents", { key: "pk_test_1", client_secret: "pi_1_secret_2", mode: "redirect" }),
    );
    expect(url.origin + url.pathname).toBe("http://127.0.0.1:8000/v1/sandbox/payment_intents/pi_1/authenticate");
    expect(Object.fromEntries(url.searchParams)).toEqual({ client_secret: "pi_1_secret_2", key: "pk_test_1", mode: "redirect" });
    const sdk = challengeUrl("http://127.0.0.1:8000/", { id: "pi_2", next_action: { type: "use_stripe_sdk", use_stripe_sdk: {} } }, "payment_intents", {
      key: "pk_test_1",
      client_secret: "pi_2_secret_3",
      mode: "modal",
      origin: "http://shop",
    });
    expect(sdk).toContain("/v1/sandbox/payment_intents/pi_2/authenticate?");
    expect(new URL(sdk).searchParams.get("origin")).toBe("http://shop");
  });

  it("returns to the merchant with the intent and its outcome", () => {
    const back = new URL(returnUrl("https://shop/done?order=7", "payment_intents", { id: "pi_1", client_secret: "pi_1_secret_2", status: "succeeded" }));
    expect(Object.fromEntries(back.searchParams)).toEqual({
      order: "7",
      payment_intent: "pi_1",
      payment_intent_client_secret: "pi_1_secret_2",
      redirect_status: "succeeded",
    });
    const failed = returnUrl("https://shop/done", "setup_intents", { id: "seti_1", client_secret: "s", status: "requires_payment_method" });
    expect(failed).toContain("setup_intent=seti_1");
    expect(failed).toContain("redirect_status=failed");
  });
});

describe("money", () => {
  it("shows minor units in the currency's own digits", () => {
    expect(money(1200, "usd", "en-US")).toBe("$12.00");
    expect(money(1200, "jpy", "en-US")).toBe("¥1,200");
    expect(money(5, "eur", "en-US")).toBe("€0.05");
  });
});
