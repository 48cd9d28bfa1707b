/**
 * Who may sign in through the agency's identity provider. The provider vouches for the person (and for their
 * second factor); handoff's own record of the agency decides who they are here and what they may do. A claim that
 * disagrees with the record is refused, never applied: a provider's group mapping gone wrong must not make anyone
 * a clinical director.
 */
import type { Role } from './case';

/** Which ID token claims name the handoff user, their agency and their role. */
export interface ClaimNames {
  user: string;
  agency: string;
  role: string;
}

/** What the ID token says about the person, by handoff's names. */
export interface ClaimedIdentity {
  subject: string;
  userId: string;
  agencyId: string;
  role: string | undefined;
  /** The provider reported a second factor (`mfa` in `amr`). */
  mfa: boolean;
}

export type Verdict<T> = { ok: T } | { refused: string };

const MAX_CLAIM_LENGTH = 200;

function claimText(claims: Record<string, unknown>, name: string): string | undefined {
  const value = claims[name];
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_CLAIM_LENGTH ? value : undefined;
}

/** Reads the person from the ID token's claims; without the user and agency claims, nobody is known. */
export function claimedIdentity(claims: Record<string, unknown>, names: ClaimNames): Verdict<ClaimedIdentity> {
  const userId = claimText(claims, names.user);
  const agencyId = claimText(claims, names.agency);
  if (!userId || !agencyId) {
    const missing = [userId ? [] : names.user, agencyId ? [] : names.agency].flat();
    return {
      refused: `your identity provider did not send ${missing.map((name) => `the ${name} claim`).join(' or ')}, which handoff needs to know who you are; an administrator maps it in the provider.`,
    };
  }
  return {
    ok: {
      subject: String(claims.sub),
      userId,
      agencyId,
      role: claimText(claims, names.role),
      mfa: Array.isArray(claims.amr) && claims.amr.includes('mfa'),
    },
  };
}

/**
 * Whether the agency's record lets the claimed person in: a second factor (when required), a user of that agency,
 * active, whose role on record is the one the provider names. The record, when it does.
 */
export function admit<R extends { role: Role; active: boolean }>(
  claimed: ClaimedIdentity,
  record: R | undefined,
  policy: { requireMfa: boolean; claims: { role: string } },
): Verdict<R> {
  if (policy.requireMfa && !claimed.mfa) {
    return {
      refused:
        'your identity provider did not report a second factor for this sign-in (its ID token has no "mfa" in amr): ' +
        'sign in again with your second factor. If the provider enforces MFA without reporting it, an administrator ' +
        'can set OIDC_REQUIRE_MFA=false.',
    };
  }
  if (!record) {
    return {
      refused: `${claimed.agencyId} has no handoff user ${claimed.userId}; an administrator of the agency adds them first.`,
    };
  }
  if (!record.active) return { refused: `${claimed.userId} is deactivated in ${claimed.agencyId}.` };
  if (claimed.role === undefined) {
    return {
      refused: `your identity provider did not send the ${policy.claims.role} claim, which handoff checks against the agency's record.`,
    };
  }
  if (claimed.role !== record.role) {
    return {
      refused: `your identity provider says you are ${claimed.role}, but ${claimed.agencyId}'s record says ${record.role}; an administrator corrects whichever is wrong.`,
    };
  }
  return { ok: record };
}
