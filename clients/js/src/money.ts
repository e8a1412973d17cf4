/** "$12.00" from 1200 "usd": amounts are minor units, with the currency's own number of them
 * (JPY has none, so 1200 "jpy" is "¥1,200"). */
export function money(amount: number, currency: string, locale?: string): string {
  const format = new Intl.NumberFormat(locale, { style: "currency", currency: currency.toUpperCase() });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(amount / 10 ** digits);
}
