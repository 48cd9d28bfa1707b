/**
 * The business checks of a caseload transfer, as pure functions of facts the caller gathered from the agency's
 * records: may this transfer start, and may this receiver take this client. Each refusal names its rule.
 */
import { requiredSpecialties } from './receivers';
import { RuleRefusal } from './rules/rule';
import type { RiskFlag } from './process';

export interface TransferStartFacts {
  counselorId: string;
  lastDay: string;
  /** The agency's date today. */
  today: string;
  counselorKnown: boolean;
  /** Listed clients that are not on the counselor's active caseload (none when the whole caseload moves). */
  strangers: string[];
  expected: number;
}

/** May this transfer start? */
export function checkTransferStart(f: TransferStartFacts): void {
  if (f.lastDay < f.today) {
    throw new RuleRefusal('invalid_input', `the counselor's last day (${f.lastDay}) is in the past`);
  }
  if (!f.counselorKnown) {
    throw new RuleRefusal(
      'unknown_counselor',
      `no counselor ${f.counselorId} is known: import or create the clinician first`,
    );
  }
  if (f.strangers.length > 0) {
    const listed = f.strangers.slice(0, 20).join(', ') + (f.strangers.length > 20 ? ', …' : '');
    throw new RuleRefusal(
      'not_on_caseload',
      `${f.strangers.length} client(s) are not on ${f.counselorId}'s active caseload: ${listed}`,
    );
  }
  if (f.expected === 0) {
    throw new RuleRefusal('empty_caseload', `${f.counselorId} has no active clients to transfer`);
  }
}

export interface ReceiverFacts {
  clinicianId: string;
  /** The clinician as the agency's record holds it, if it does. */
  clinician: { active: boolean } | undefined;
  departingCounselorId: string;
  /** Capacity and load now (proposals of open transfers included), when the clinician can receive at all. */
  load: { capacity: number; load: number; specialties: string[] } | undefined;
  /** Whether the client is already proposed to this clinician (so counted in the load). */
  alreadyProposed: boolean;
  client: { needs: string[]; riskFlags: RiskFlag[] };
}

/** May this receiver take this client? Room left, and every specialty the client needs (risk flags count). */
export function checkReceiver(f: ReceiverFacts): void {
  if (!f.clinician || !f.clinician.active || f.clinicianId === f.departingCounselorId) {
    throw new RuleRefusal(
      'unknown_receiver',
      `${f.clinicianId} is not an active clinician of this agency who can receive the client`,
    );
  }
  const load = f.load;
  if (!load || load.load - (f.alreadyProposed ? 1 : 0) >= load.capacity) {
    throw new RuleRefusal('receiver_full', `${f.clinicianId} has no room left (capacity ${load?.capacity ?? 0})`);
  }
  const missing = requiredSpecialties(f.client.needs, f.client.riskFlags).filter(
    (need) => !load.specialties.includes(need),
  );
  if (missing.length > 0) {
    throw new RuleRefusal(
      'receiver_lacks_specialty',
      `${f.clinicianId} lacks what this client needs: ${missing.join(', ')}`,
    );
  }
}
