// How far the verified chain vouches for an event. The chain is checked in position order,
// so once it breaks nothing after the break is vouched for: the first bad event is `broken`
// and every event after it `untrusted`, whatever its own hash says (a forger re-seals the
// events after an edit; an event after a break proves only that it follows the forgery).

import type { VerifyReport } from '../data/types';

export type Trust = 'verified' | 'broken' | 'untrusted' | 'unverified';

/** The trust of the event at `position` under `report` (`unverified` before the chain was
 * checked). */
export function trustOf(report: VerifyReport | null, position: number): Trust {
  if (report === null) return 'unverified';
  const bad = report.firstBadPosition;
  if (bad === null) return 'verified';
  return position < bad ? 'verified' : position === bad ? 'broken' : 'untrusted';
}

/** The first position the chain does not vouch for; null when it vouches for all. */
export function untrustedFrom(report: VerifyReport | null): number | null {
  return report?.firstBadPosition ?? null;
}

/** What a row's marker says, for its tooltip and for screen readers. */
export function trustLabel(trust: Trust, report: VerifyReport | null): string {
  const bad = untrustedFrom(report);
  switch (trust) {
    case 'broken':
      return `Does not verify: the chain breaks here (${report?.fault?.kind ?? 'fault'})`;
    case 'untrusted':
      return `Untrusted: after the break at position ${bad ?? '?'}`;
    case 'verified':
    case 'unverified':
      return '';
  }
}
