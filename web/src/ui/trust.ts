// Marks what the chain does not vouch for, in every view: rows of the first bad event and
// of every event after it, an event's details (with the hash it carries and the hash the
// chain requires), and a state folded from such events.

import type { StoredEvent, VerifyReport } from '../data/types';
import { type Trust, trustLabel, trustOf, untrustedFrom } from '../model/trust';
import { formatCount } from '../model/format';
import { h } from './dom';

/** Marks a list row with the trust of the event at `position` (`data-trust`, a tooltip). */
export function markRow(element: HTMLElement, report: VerifyReport | null, position: number): Trust {
  const trust = trustOf(report, position);
  if (trust === 'broken' || trust === 'untrusted') {
    element.dataset['trust'] = trust;
    element.title = trustLabel(trust, report);
  } else {
    delete element.dataset['trust'];
    element.removeAttribute('title');
  }
  return trust;
}

/** The warning above an event's details when the chain does not vouch for it: for the bad
 * event itself, the fault and the expected against the actual hash. */
export function eventNotice(event: StoredEvent, report: VerifyReport | null): HTMLElement | null {
  const trust = trustOf(report, event.position);
  if (trust !== 'broken' && trust !== 'untrusted') return null;
  if (trust === 'untrusted') {
    return h(
      'div',
      { class: 'trust-notice', role: 'note', data: { trust } },
      h('strong', { text: 'Untrusted. ' }),
      `The chain breaks at position ${formatCount(untrustedFrom(report) ?? 0)}, before this event: `,
      'nothing from there on is verified, whatever its own hash says.',
    );
  }
  const mismatch = report?.mismatch ?? null;
  const fault = report?.fault;
  const why =
    fault?.kind === 'POSITION_GAP'
      ? `position ${fault.expected} is missing before it`
      : fault?.kind === 'PREV_HASH_MISMATCH'
        ? 'its prevHash is not the hash of the event before it'
        : 'its hash is not the hash of its bytes: it was altered after it was sealed';
  return h(
    'div',
    { class: 'trust-notice', role: 'note', data: { trust } },
    h('strong', { text: 'Does not verify. ' }),
    `The chain breaks here (${fault?.kind ?? 'fault'}): ${why}. Its values are not fact.`,
    mismatch
      ? h(
          'dl',
          { class: 'hashes' },
          h('dt', { text: `Expected ${mismatch.field}` }),
          h('dd', { class: 'mono hash', data: { hash: 'expected' }, text: mismatch.expected }),
          h('dt', { text: `Actual ${mismatch.field}` }),
          h('dd', { class: 'mono hash', data: { hash: 'actual' }, text: mismatch.actual }),
        )
      : null,
  );
}

/** The label of a state folded from events up to `lastPosition` when the chain does not vouch
 * for all of them. */
export function foldNotice(report: VerifyReport | null, lastPosition: number, what: string): HTMLElement | null {
  const bad = untrustedFrom(report);
  if (bad === null || lastPosition < bad) return null;
  return h(
    'p',
    { class: 'trust-notice', role: 'note', data: { trust: 'untrusted' } },
    h('strong', { text: 'Folded past the break. ' }),
    `${what} includes events from position ${formatCount(bad)} on, where the chain breaks: it is not fact.`,
  );
}
