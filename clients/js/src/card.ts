// What the payment element knows about a card before PayFlow sees it: brand from the first
// digits, length and Luhn check, expiry and CVC, with Stripe.js's error codes and messages.
// Pure functions: tested without a browser (test/card.test.ts).

export type Brand =
  | "visa"
  | "mastercard"
  | "amex"
  | "discover"
  | "diners"
  | "jcb"
  | "unionpay"
  | "unknown";

export type Field = "number" | "expiry" | "cvc";

export interface CardError {
  field: Field;
  code: string;
  message: string;
}

export interface CardInput {
  number: string;
  expiry: string;
  cvc: string;
}

export interface CardFields {
  number: string;
  exp_month: number;
  exp_year: number;
  cvc: string;
}

interface BrandRule {
  brand: Brand;
  prefix: RegExp;
  lengths: number[];
  cvc: number;
  // Where the number's groups end when shown: 4-4-4-4, or Amex's 4-6-5.
  gaps: number[];
}

const FOUR = [4, 8, 12, 16];

// Order matters: UnionPay's 62 is tested before Discover's 6011/64/65.
const RULES: BrandRule[] = [
  { brand: "visa", prefix: /^4/, lengths: [13, 16, 19], cvc: 3, gaps: FOUR },
  { brand: "mastercard", prefix: /^(5[1-5]|2[2-7])/, lengths: [16], cvc: 3, gaps: FOUR },
  { brand: "amex", prefix: /^3[47]/, lengths: [15], cvc: 4, gaps: [4, 10] },
  { brand: "diners", prefix: /^3(0[0-5]|095|[689])/, lengths: [14, 16, 19], cvc: 3, gaps: FOUR },
  { brand: "jcb", prefix: /^35/, lengths: [16, 17, 18, 19], cvc: 3, gaps: FOUR },
  { brand: "unionpay", prefix: /^62/, lengths: [16, 17, 18, 19], cvc: 3, gaps: FOUR },
  { brand: "discover", prefix: /^(6011|64[4-9]|65)/, lengths: [16, 17, 18, 19], cvc: 3, gaps: FOUR },
];

const UNKNOWN: BrandRule = { brand: "unknown", prefix: /$^/, lengths: [16], cvc: 3, gaps: FOUR };

export const MAX_DIGITS = 19;

export function digitsOf(text: string): string {
  return text.replace(/\D/g, "");
}

function ruleOf(number: string): BrandRule {
  const digits = digitsOf(number);
  return RULES.find((rule) => rule.prefix.test(digits)) ?? UNKNOWN;
}

/** The brand the first digits name, as the element shows it while the customer types. */
export function detectBrand(number: string): Brand {
  return ruleOf(number).brand;
}

/** How many digits the brand's security code has (Amex 4, every other brand 3). */
export function cvcLength(brand: Brand): number {
  return (RULES.find((rule) => rule.brand === brand) ?? UNKNOWN).cvc;
}

/** The Luhn checksum every card number carries in its last digit. */
export function luhnValid(number: string): boolean {
  const digits = digitsOf(number);
  if (digits.length < 12) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i += 1) {
    let digit = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}

/** The number grouped as printed on the card ("4242 4242 4242 4242", "3782 822463 10005"). */
export function formatNumber(text: string): string {
  const rule = ruleOf(text);
  const digits = digitsOf(text).slice(0, Math.max(...rule.lengths, 16));
  let out = "";
  for (let i = 0; i < digits.length; i += 1) {
    if (i > 0 && rule.gaps.includes(i)) out += " ";
    out += digits[i];
  }
  return out;
}

/** "MM / YY" as typed: the separator comes once the month is whole, and a single digit
 * above 1 is a month already ("4" -> "04 / "). */
export function formatExpiry(text: string): string {
  let digits = digitsOf(text).slice(0, 4);
  if (digits.length === 1 && Number(digits) > 1) digits = `0${digits}`;
  if (digits.length < 2) return digits;
  return `${digits.slice(0, 2)} / ${digits.slice(2)}`;
}

/** The month and four-digit year of "MM / YY" (or "MM/YYYY"), or null when incomplete. */
export function parseExpiry(text: string): { month: number; year: number } | null {
  const match = /^\s*(\d{1,2})\s*\/?\s*(\d{2}|\d{4})\s*$/.exec(text);
  if (!match) return null;
  const year = match[2].length === 2 ? 2000 + Number(match[2]) : Number(match[2]);
  return { month: Number(match[1]), year };
}

function error(field: Field, code: string, message: string): CardError {
  return { field, code, message };
}

/** The first problem with what the customer typed, or null when the card can be sent.
 * `partial` leaves incomplete fields alone (while typing); a submit checks them all. */
export function validateCard(input: CardInput, now: Date, partial = false): CardError | null {
  const number = digitsOf(input.number);
  const rule = ruleOf(number);
  const longest = Math.max(...rule.lengths);
  if (number.length === 0 && !partial) {
    return error("number", "incomplete_number", "Your card number is incomplete.");
  }
  if (number.length > 0) {
    const complete = rule.lengths.includes(number.length);
    if (complete || number.length >= longest) {
      if (!luhnValid(number)) {
        return error("number", "invalid_number", "Your card number is invalid.");
      }
    } else if (!partial) {
      return error("number", "incomplete_number", "Your card number is incomplete.");
    }
  }
  const expiry = parseExpiry(input.expiry);
  if (expiry === null) {
    if (!partial || digitsOf(input.expiry).length > 4) {
      return error("expiry", "incomplete_expiry", "Your card's expiration date is incomplete.");
    }
  } else {
    if (expiry.month < 1 || expiry.month > 12) {
      return error("expiry", "invalid_expiry_month", "Your card's expiration date is invalid.");
    }
    const year = now.getFullYear();
    const month = now.getMonth() + 1;
    if (expiry.year < year || (expiry.year === year && expiry.month < month)) {
      return error(
        "expiry",
        "invalid_expiry_year_past",
        "Your card's expiration date is in the past.",
      );
    }
    if (expiry.year > year + 50) {
      return error("expiry", "invalid_expiry_year", "Your card's expiration year is invalid.");
    }
  }
  const cvc = digitsOf(input.cvc);
  if (cvc.length !== cvcLength(rule.brand) && !(partial && cvc.length < cvcLength(rule.brand))) {
    return error("cvc", "incomplete_cvc", "Your card's security code is incomplete.");
  }
  return null;
}

/** Whether every field is filled in and valid: the element's `complete`. */
export function isComplete(input: CardInput, now: Date): boolean {
  return validateCard(input, now) === null;
}

/** What PayFlow's POST /v1/payment_methods takes, once `validateCard` found nothing. */
export function cardFields(input: CardInput): CardFields {
  const expiry = parseExpiry(input.expiry);
  if (expiry === null) throw new Error("cardFields needs a validated card");
  return {
    number: digitsOf(input.number),
    exp_month: expiry.month,
    exp_year: expiry.year,
    cvc: digitsOf(input.cvc),
  };
}
