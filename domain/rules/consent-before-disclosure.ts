/**
 * Consent before disclosure (DOMAIN.md, 42 CFR Part 2 §2.31): nothing clinical goes to an outside provider
 * without a current release that names that recipient; substance-use-disorder records need a release that
 * covers them explicitly; a revoked release stops the handoff.
 */
import type { Consent } from '../process';
import { type Blocker, RULES } from './rule';

export const REDISCLOSURE_NOTICE = '42 CFR part 2 prohibits unauthorized use or disclosure of these records.';

export interface Disclosure {
  providerId: string;
  providerName: string;
  /** The agency's date today. */
  today: string;
  substanceUseRecords: boolean;
}

/** The release that lets this disclosure happen today, or the blocker that says what is missing. */
export function releaseFor(consents: Consent[], d: Disclosure): Consent | Blocker {
  const blocker = (detail: string): Blocker => ({ rule: RULES.consentBeforeDisclosure, detail });
  const naming = consents.filter((c) => c.recipientProviderId === d.providerId);
  if (naming.length === 0) {
    const others = [...new Set(consents.map((c) => c.recipientProviderId))];
    return blocker(
      `no release of information names ${d.providerName}` +
        (others.length ? ` (the releases on file name ${others.join(', ')})` : ''),
    );
  }
  const live = naming.filter((c) => !c.revokedAt);
  if (live.length === 0) return blocker(`the release naming ${d.providerName} was revoked`);
  const current = live.filter((c) => c.expiresOn >= d.today);
  if (current.length === 0) return blocker(`the release naming ${d.providerName} expired`);
  if (!d.substanceUseRecords) return current[0]!;
  const covering = current.find((c) => c.coversSubstanceUseRecords);
  return (
    covering ??
    blocker(
      `42 CFR Part 2: the client has substance-use-disorder records and no release naming ${d.providerName} covers them explicitly`,
    )
  );
}

export function isBlocker(value: Consent | Blocker): value is Blocker {
  return 'rule' in value;
}
