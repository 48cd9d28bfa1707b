/**
 * Safe contact (DOMAIN.md): a client with a domestic-violence flag or a "no contact at home" preference is
 * contacted only by a channel they confirmed safe; with none, the letter is held for in-person delivery.
 */
import type { CaseContact, ContactChannel, RiskFlag } from '../process';
import { RULES, refuse } from './rule';

/** A case's facts or the record's: the rule needs the channels and whether an address is there, not the address. */
export interface ContactFacts {
  riskFlags: RiskFlag[];
  contact: CaseContact;
}

/** Why contact is restricted to confirmed safe channels, in words fit for the audit trail; null if it is not. */
export function contactRestriction(facts: ContactFacts): string | null {
  const reasons = [
    ...(facts.riskFlags.includes('domestic_violence') ? ['a domestic-violence flag'] : []),
    ...(facts.contact.noContactAtHome ? ['"no contact at home"'] : []),
  ];
  return reasons.length ? reasons.join(' and ') : null;
}

export function channelAllowed(facts: ContactFacts, channel: ContactChannel): boolean {
  if (channel === 'in_person' || !contactRestriction(facts)) return true;
  return facts.contact.channels.some((c) => c.channel === channel && c.safe);
}

/** Refuses an outreach by a channel the client did not confirm safe. */
export function checkOutreachChannel(facts: ContactFacts, channel: ContactChannel): void {
  if (channelAllowed(facts, channel)) return;
  refuse(
    RULES.safeContact,
    `${channel} is not a channel this client confirmed safe (${contactRestriction(facts)} on record); reach them only by a confirmed safe channel or in person`,
  );
}

export type LetterRoute = { channel: ContactChannel; heldBecause: null } | { channel: null; heldBecause: string };

/** The channels a letter can go by: email (with the PDF) and the day's print-and-mail batch, each to an address on record. */
export function canCarryLetter(contact: CaseContact, channel: ContactChannel): boolean {
  if (channel === 'email') return contact.hasEmail ?? Boolean(contact.email);
  if (channel === 'mail') return contact.hasPostalAddress ?? Boolean(contact.postalAddress);
  return false;
}

/** Whether two contacts route the same: the same channels, safety and addresses on record (whatever the addresses). */
export function sameRouting(a: CaseContact, b: CaseContact): boolean {
  const shape = (c: CaseContact) =>
    JSON.stringify([
      c.channels.map((x) => [x.channel, x.safe]),
      c.noContactAtHome,
      canCarryLetter(c, 'email'),
      canCarryLetter(c, 'mail'),
    ]);
  return shape(a) === shape(b);
}

/** The channel a letter may go by, or why it is held for in-person delivery. */
export function letterRoute(facts: ContactFacts): LetterRoute {
  const restriction = contactRestriction(facts);
  const usable = facts.contact.channels.filter((c) => canCarryLetter(facts.contact, c.channel));
  const chosen = restriction ? usable.find((c) => c.safe) : usable[0];
  if (chosen) return { channel: chosen.channel, heldBecause: null };
  return {
    channel: null,
    heldBecause: restriction
      ? `${RULES.safeContact}: ${restriction} on record and no channel the client confirmed safe`
      : `${RULES.safeContact}: no email or postal address on record for a channel the client uses`,
  };
}
