import type { RiskFlag } from './process';

/** Specialties a receiver needs for a client: the client's needs, and one per risk flag. */
export function requiredSpecialties(needs: string[], riskFlags: RiskFlag[]): string[] {
  return [...new Set([...needs, ...riskFlags])];
}
