// The chain badge: whether the loaded log's hash chain verifies, computed in the browser by
// the wasm build of the core, and when it does not, the first bad position and its event.

import type { CheckpointReport, StoredEvent, VerifyReport } from '../data/types';
import type { Judgement } from '../model/consistency';
import { formatCount, shortId } from '../model/format';
import { h, replace } from './dom';

export type BadgeState =
  | { readonly kind: 'empty' }
  | { readonly kind: 'verifying'; readonly checked?: number; readonly total?: number }
  | {
      readonly kind: 'report';
      readonly report: VerifyReport;
      readonly badEvent: StoredEvent | null;
      /** The file's signed checkpoint, checked (none for a live log or an undecodable file). */
      readonly checkpoint?: CheckpointReport | null;
      /** The live server's checkpoints, judged (only while following its tail). */
      readonly live?: Judgement | null;
    }
  | { readonly kind: 'error'; readonly message: string }
  /** An order's receipt opened from a file, checked. */
  | { readonly kind: 'receipt'; readonly ok: boolean; readonly detail: string };

type BadgeText = { text: string; detail: string; tone: string };

/** The chain's verdict, then the checkpoint's: a chain that verifies but ends short of the
 * checkpoint the file carries, or is not the log it states, is refused; then the live
 * server's checkpoints: one that does not extend the last seen is a rewritten history. */
export function badgeText(state: BadgeState): BadgeText {
  const chain = chainText(state);
  if (state.kind !== 'report') return chain;
  const live = state.live ?? null;
  if (live?.kind === 'rewritten') return { text: 'History rewritten', detail: live.detail, tone: 'bad' };
  if (live?.kind === 'refused') return { text: 'Live checkpoint refused', detail: live.detail, tone: 'bad' };
  const checked = !state.checkpoint || chain.tone === 'bad' ? chain : withCheckpoint(chain, state.checkpoint);
  if (live?.kind !== 'consistent' || checked.tone === 'bad') return checked;
  return { ...checked, detail: `${checked.detail} · live: ${live.detail}` };
}

function withCheckpoint(chain: BadgeText, report: CheckpointReport): BadgeText {
  const { checkpoint, coverage, signatureError } = report;
  if (!checkpoint || !coverage) return chain;
  const signed = `signed ${checkpoint.timestamp} by key ${checkpoint.keyId}`;
  if (signatureError !== null) {
    return { text: 'Checkpoint signature invalid', detail: `${signatureError} (${signed})`, tone: 'bad' };
  }
  switch (coverage.kind) {
    case 'TRUNCATED':
      return {
        text: 'Export cut short of its checkpoint',
        detail:
          `the checkpoint ${signed} covers ${formatCount(coverage.treeSize)} events; ` +
          `the file ends at position ${formatCount(coverage.lastPosition)}`,
        tone: 'bad',
      };
    case 'CHAIN_HASH_MISMATCH':
    case 'ROOT_MISMATCH': {
      const what = coverage.kind === 'ROOT_MISMATCH' ? 'Merkle root' : 'chain hash';
      return {
        text: 'Not the log its checkpoint states',
        detail: `the ${what} at ${formatCount(coverage.treeSize)} events is ${coverage.actual}, the checkpoint's ${coverage.expected} (${signed})`,
        tone: 'bad',
      };
    }
    case 'COVERED': {
      const after = coverage.after > 0 ? `, ${formatCount(coverage.after)} after it unsigned` : '';
      return {
        ...chain,
        detail: `${chain.detail} · checkpoint of ${formatCount(coverage.treeSize)} ${signed}${after}`,
      };
    }
    case 'NOT_WHOLE_LOG':
      return chain;
  }
}

function chainText(state: BadgeState): BadgeText {
  switch (state.kind) {
    case 'empty':
      return { text: 'No log loaded', detail: '', tone: 'neutral' };
    case 'verifying':
      return {
        text: 'Verifying chain…',
        detail:
          state.total && state.checked !== undefined
            ? `${formatCount(state.checked)} of ${formatCount(state.total)} events (${Math.floor((100 * state.checked) / state.total)}%)`
            : '',
        tone: 'neutral',
      };
    case 'error':
      return { text: 'Cannot verify', detail: state.message, tone: 'bad' };
    case 'receipt':
      return state.ok
        ? { text: 'Receipt verified', detail: state.detail, tone: 'good' }
        : { text: 'Receipt does not verify', detail: state.detail, tone: 'bad' };
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
