import { describe, expect, it } from "vitest";

import {
  cardFields,
  cvcLength,
  detectBrand,
  formatExpiry,
  formatNumber,
  luhnValid,
  parseExpiry,
  validateCard,
} from "../src/card";

const NOW = new Date(2026, 11, 1); // 1 December 2026

describe("brand detection", () => {
  it.each([
    ["4242424242424242", "visa"],
    ["5555555555554444", "mastercard"],
    ["2223003122003222", "mastercard"],
    ["378282246310005", "amex"],
    ["6011111111111117", "discover"],
    ["3056930009020004", "diners"],
    ["3566002020360505", "jcb"],
    ["6200000000000005", "unionpay"],
    ["9999", "unknown"],
    ["", "unknown"],
  ])("%s is %s", (number, brand) => {
    expect(detectBrand(number)).toBe(brand);
  });

  it("reads the brand from the first digits while typing", () => {
    expect(detectBrand("4")).toBe("visa");
    expect(detectBrand("37")).toBe("amex");
    expect(cvcLength("amex")).toBe(4);
    expect(cvcLength("visa")).toBe(3);
  });
});

describe("Luhn", () => {
  it("accepts Stripe's test numbers and refuses one digit off", () => {
    for (const number of ["4242424242424242", "4000000000000002", "4000002500003155", "378282246310005"]) {
      expect(luhnValid(number)).toBe(true);
      const last = Number(number.at(-1));
      expect(luhnValid(number.slice(0, -1) + String((last + 1) % 10))).toBe(false);
    }
  });

  it("ignores spaces and refuses short numbers", () => {
    expect(luhnValid("4242 4242 4242 4242")).toBe(true);
    expect(luhnValid("0")).toBe(false);
  });
});

describe("formatting as the customer types", () => {
  it("groups numbers as printed on the card", () => {
    expect(formatNumber("4242424242424242")).toBe("4242 4242 4242 4242");
    expect(formatNumber("378282246310005")).toBe("3782 822463 10005");
    expect(formatNumber("4242-42")).toBe("4242 42");
    expect(formatNumber("42424242424242424242424")).toHaveLength(19 + 4);
  });

  it("writes the expiry as MM / YY", () => {
    expect(formatExpiry("4")).toBe("04 / ");
    expect(formatExpiry("1")).toBe("1");
    expect(formatExpiry("12")).toBe("12 / ");
    expect(formatExpiry("1230")).toBe("12 / 30");
    expect(parseExpiry("12 / 30")).toEqual({ month: 12, year: 2030 });
    expect(parseExpiry("7/2031")).toEqual({ month: 7, year: 2031 });
    expect(parseExpiry("12 / 3")).toBeNull();
  });
});

describe("validation", () => {
  const card = { number: "4242 4242 4242 4242", expiry: "12 / 30", cvc: "123" };

  it("passes a complete test card and gives the API its fields", () => {
    expect(validateCard(card, NOW)).toBeNull();
    expect(cardFields(card)).toEqual({ number: "4242424242424242", exp_month: 12, exp_year: 2030, cvc: "123" });
  });

  it.each([
    [{ number: "" }, "number", "incomplete_number"],
    [{ number: "4242 4242" }, "number", "incomplete_number"],
    [{ number: "4242 4242 4242 4241" }, "number", "invalid_number"],
    [{ expiry: "" }, "expiry", "incomplete_expiry"],
    [{ expiry: "13 / 30" }, "expiry", "invalid_expiry_month"],
    [{ expiry: "11 / 26" }, "expiry", "invalid_expiry_year_past"],
    [{ expiry: "01 / 99" }, "expiry", "invalid_expiry_year"],
    [{ expiry: "01 / 2090" }, "expiry", "invalid_expiry_year"],
    [{ cvc: "12" }, "cvc", "incomplete_cvc"],
    [{ number: "378282246310005", cvc: "123" }, "cvc", "incomplete_cvc"],
  ])("%o -> %s %s", (change, field, code) => {
    const problem = validateCard({ ...card, ...change }, NOW);
    expect(problem).toMatchObject({ field, code });
    expect(problem?.message).toMatch(/^Your card/);
  });

  it("this month is still valid", () => {
    expect(validateCard({ ...card, expiry: "12 / 26" }, NOW)).toBeNull();
  });

  it("while typing, only what is already wrong is reported", () => {
    expect(validateCard({ number: "4242", expiry: "", cvc: "" }, NOW, true)).toBeNull();
    expect(validateCard({ number: "4242 4242 4242 4241", expiry: "", cvc: "" }, NOW, true)?.code).toBe("invalid_number");
    expect(validateCard({ ...card, expiry: "10 / 25" }, NOW, true)?.code).toBe("invalid_expiry_year_past");
  });
});
