// The chain badge: whether the loaded log's hash chain verifies, computed in the browser by
// the wasm build of the core, and when it does not, the first bad position and its event.

import type { StoredEvent, VerifyReport } from '../data/types';
import { formatCount, shortId } from '../model/format';
import { h, replace } from './dom';

export type BadgeState =
  | { readonly kind: 'empty' }
  | { readonly kind: 'verifying' }
  | { readonly kind: 'report'; readonly report: VerifyReport; readonly badEvent: StoredEvent | null }
  | { readonly kind: 'error'; readonly message: string };

export function badgeText(state: BadgeState): { text: string; detail: string; tone: string } {
  switch (state.kind) {
    case 'empty':
      return { text: 'No log loaded', detail: '', tone: 'neutral' };
    case 'verifying':
      return { text: 'Verifying chain…', detail: '', tone: 'neutral' };
    case 'error':
      return { text: 'Cannot verify', detail: state.message, tone: 'bad' };
    case 'report': {
      const { report, badEvent } = state;
      const withheld = report.withheld;
      if (report.firstBadPosition === null && withheld > 0) {
        // Not all good: those events' hashes cover metadata this copy does not have.
        const detail =
          `${formatCount(report.verified)} events of one ${report.scope} each hash checked; ` +
          `${formatCount(withheld)} with another user's identity withheld, their hashes not checkable here`;
        return { text: `${formatCount(withheld)} events could not be verified`, detail, tone: 'neutral' };
      }
      if (report.firstBadPosition === null && report.scope === 'range') {
        return { text: 'Chain verified', detail: `${formatCount(report.verified)} events`, tone: 'good' };
      }
      if (report.firstBadPosition === null) {
        // A stream or correlation export: each event checked, the gaps between them not.
        const detail = `${formatCount(report.verified)} events of one ${report.scope}, each hash checked`;
        return { text: 'Events verified', detail, tone: 'good' };
      }
      const fault = report.fault?.kind ?? 'FAULT';
      const where = badEvent
        ? ` · ${badEvent.aggregateType} ${shortId(badEvent.aggregateId)} v${badEvent.version}`
        : '';
      return { text: `Chain broken at position ${report.firstBadPosition}`, detail: `${fault}${where}`, tone: 'bad' };
    }
  }
}

export class Badge {
  readonly element = h('div', { id: 'badge', class: 'badge', role: 'status', attrs: { 'aria-live': 'polite' } });

  constructor(private readonly onOpenBad: (position: number) => void) {
    this.set({ kind: 'empty' });
  }

  set(state: BadgeState): void {
    const { text, detail, tone } = badgeText(state);
    this.element.dataset['tone'] = tone;
    const bad = state.kind === 'report' ? state.report.firstBadPosition : null;
    const label = h('span', { class: 'badge-text' }, tone === 'good' ? '✓ ' : tone === 'bad' ? '✗ ' : '', text);
    const title =
      state.kind === 'report' && state.badEvent
        ? `${detail} (${state.badEvent.eventType}) — open it in the log`
        : detail;
    const children = [label, detail ? h('span', { class: 'badge-detail', text: detail, title }) : null];
    if (bad !== null && state.kind === 'report' && state.badEvent) {
      replace(
        this.element,
        h('button', { class: 'badge-button', on: { click: () => this.onOpenBad(bad) } }, ...children),
      );
    } else {
      replace(this.element, ...children);
    }
  }
}
