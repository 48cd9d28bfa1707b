/**
 * Dates are the agency's dates: "today", a deadline, an expiry are read in the agency's IANA time zone.
 * Pure functions of an instant and a zone (Intl is deterministic inside the workflow sandbox).
 */

export const DEFAULT_TIME_ZONE = 'UTC';
export const DEFAULT_LOCALE = 'en-US';

/** A format per zone, made once: making one costs far more than using it (it was 9% of a worker's CPU). */
function cachedPerZone(make: (timeZone: string) => Intl.DateTimeFormat): (timeZone: string) => Intl.DateTimeFormat {
  const formats = new Map<string, Intl.DateTimeFormat>();
  return (timeZone) => {
    let format = formats.get(timeZone);
    if (!format) {
      format = make(timeZone);
      formats.set(timeZone, format);
    }
    return format;
  };
}

const ymdFormat = cachedPerZone(
  (timeZone) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }),
);

const instantFormat = cachedPerZone(
  (timeZone) =>
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    }),
);

/** Whether a name is an IANA time zone this runtime knows. */
export function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The agency's calendar date (YYYY-MM-DD) at an instant. */
export function localDate(instantMs: number, timeZone: string = DEFAULT_TIME_ZONE): string {
  const parts = ymdFormat(timeZone).formatToParts(new Date(instantMs));
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** How far the zone is ahead of UTC at an instant, in milliseconds. */
function offsetMs(instantMs: number, timeZone: string): number {
  const parts = Object.fromEntries(
    instantFormat(timeZone)
      .formatToParts(new Date(instantMs))
      .map((p) => [p.type, p.value]),
  );
  const asUtc = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  return asUtc - Math.floor(instantMs / 1000) * 1000;
}

/** The instant the agency's day `isoDate` begins (local midnight), as epoch milliseconds. */
export function startOfLocalDay(isoDate: string, timeZone: string = DEFAULT_TIME_ZONE): number {
  const midnightUtc = Date.parse(`${isoDate.slice(0, 10)}T00:00:00.000Z`);
  // Two passes settle the offset across a daylight-saving change.
  let instant = midnightUtc - offsetMs(midnightUtc, timeZone);
  instant = midnightUtc - offsetMs(instant, timeZone);
  return instant;
}

export function addDays(isoDate: string, days: number): string {
  const date = new Date(`${isoDate.slice(0, 10)}T00:00:00.000Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

export function daysBetween(fromIsoDate: string, toIsoDate: string): number {
  const from = Date.parse(`${fromIsoDate.slice(0, 10)}T00:00:00.000Z`);
  const to = Date.parse(`${toIsoDate.slice(0, 10)}T00:00:00.000Z`);
  return Math.round((to - from) / 86_400_000);
}

/** A calendar date as people read it, in the agency's locale: "November 29, 2026". */
export function readableDate(isoDate: string, locale: string = DEFAULT_LOCALE): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: 'long', timeZone: 'UTC' }).format(
    new Date(`${isoDate.slice(0, 10)}T00:00:00.000Z`),
  );
}
