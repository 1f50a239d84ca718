// Money and dates as people read them. Amounts arrive in minor units of their currency; how
// many minor digits a currency has comes from Intl (2 for USD, 0 for JPY, 3 for KWD), never
// from a fixed 100.

export interface Money {
  amount: number;
  currency: string;
}

const moneyFormats = new Map<string, Intl.NumberFormat>();

function moneyFormat(currency: string): Intl.NumberFormat {
  let format = moneyFormats.get(currency);
  if (!format) {
    format = new Intl.NumberFormat(undefined, { style: "currency", currency });
    moneyFormats.set(currency, format);
  }
  return format;
}

/** Minor digits of a currency: 2 for USD, 0 for JPY, 3 for KWD. */
export function minorDigits(currency: string): number {
  return moneyFormat(currency).resolvedOptions().maximumFractionDigits ?? 2;
}

export function formatMoney(money: Money | null | undefined): string {
  if (!money) return "";
  return moneyFormat(money.currency).format(money.amount / 10 ** minorDigits(money.currency));
}

const numbers = new Intl.NumberFormat();
export const formatNumber = (n: number): string => numbers.format(n);

const days = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric", timeZone: "UTC" });
export const formatDay = (iso: string | null | undefined): string => (iso ? days.format(new Date(iso)) : "—");

const months = new Intl.DateTimeFormat(undefined, { year: "2-digit", month: "short", timeZone: "UTC" });
export const formatMonth = (isoDay: string): string => months.format(new Date(`${isoDay.slice(0, 10)}T00:00:00Z`));

/** The first day of the month `offset` months from this one (UTC), as YYYY-MM-DD. */
export function monthStart(offset: number, today = new Date()): string {
  return new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth() + offset, 1)).toISOString().slice(0, 10);
}

/** The last day of the month before this one: reports end there, so no month is partial. */
export function endOfLastMonth(today = new Date()): string {
  return new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 0)).toISOString().slice(0, 10);
}
