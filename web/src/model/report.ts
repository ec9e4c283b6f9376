// The verification report: what was checked, over which events, the head, the checkpoint with
// its signature and key id, the live tail's checkpoints, and the result — one JSON document an
// auditor can download, print, hand over and check again (docs/AUDIT.md).

import type { CheckpointReport, VerifyReport } from '../data/types';
import type { Checkpoint, Judgement } from './consistency';

export const REPORT_FORMAT = 'perpetua-verification-report/1';

/** What the report is made from. */
export interface ReportInput {
  readonly source: string;
  readonly generatedAt: Date;
  readonly events: {
    readonly count: number;
    readonly firstPosition: number | null;
    readonly lastPosition: number | null;
  };
  /** The last event loaded: the head the chain reaches. */
  readonly head: { readonly position: number; readonly hash: string } | null;
  readonly chain: VerifyReport;
  readonly checkpoint: CheckpointReport | null;
  readonly live: readonly {
    readonly checkpoint: Checkpoint;
    readonly judgement: Judgement;
    readonly checkedAt: string;
  }[];
  /** The badge's verdict, as shown. */
  readonly verdict: { readonly text: string; readonly detail: string };
}

export type ReportResult =
  | 'VERIFIED'
  | 'VERIFIED_UNPROVEN_COMPLETE'
  | 'PARTLY_VERIFIED'
  | 'CHAIN_BROKEN'
  | 'CHECKPOINT_REFUSED'
  | 'HISTORY_REWRITTEN';

/** The result, worst first: a rewritten history, a broken chain, a refused checkpoint; then
 * events whose metadata was withheld; then a whole chain without a checkpoint (sound, but its
 * completeness not proven); else verified. */
export function resultOf(input: ReportInput): ReportResult {
  const live = input.live.map((s) => s.judgement.kind);
  if (live.includes('rewritten')) return 'HISTORY_REWRITTEN';
  if (input.chain.firstBadPosition !== null) return 'CHAIN_BROKEN';
  const cp = input.checkpoint;
  const coverage = cp?.coverage?.kind;
  const refused =
    live.includes('refused') ||
    (cp?.checkpoint != null &&
      (cp.signatureError !== null ||
        coverage === 'TRUNCATED' ||
        coverage === 'CHAIN_HASH_MISMATCH' ||
        coverage === 'ROOT_MISMATCH'));
  if (refused) return 'CHECKPOINT_REFUSED';
  if (input.chain.withheld > 0) return 'PARTLY_VERIFIED';
  const signed = (coverage === 'COVERED' && cp?.signatureError === null) || input.live.length > 0;
  return signed ? 'VERIFIED' : 'VERIFIED_UNPROVEN_COMPLETE';
}

/** The report as a plain JSON value. */
export function buildReport(input: ReportInput): Record<string, unknown> {
  const cp = input.checkpoint?.checkpoint ?? null;
  const checked = [
    input.chain.scope === 'range'
      ? "the hash chain: each event's hash recomputed from its canonical bytes and the hash before it, positions contiguous from the first (docs/AUDIT.md §6)"
      : `each event of one ${input.chain.scope} on its own: its hash recomputed from its bytes, and its link wherever its neighbour is present (docs/AUDIT.md §7)`,
  ];
  if (cp) {
    checked.push(
      "the export's signed checkpoint: its Ed25519 signature under the key it names, the chain hash at its size, and the Merkle root (RFC 9162) of the first treeSize events (docs/AUDIT.md §10)",
    );
  }
  if (input.live.length > 0) {
    checked.push(
      "the live server's checkpoints: each signed, each extending the last one seen by an RFC 9162 consistency proof between the signed roots, each agreeing with the events loaded",
    );
  }
  return {
    format: REPORT_FORMAT,
    generatedAt: input.generatedAt.toISOString(),
    verifier: 'the Perpetua core compiled to wasm32, run in this browser',
    source: input.source,
    result: resultOf(input),
    verdict: input.verdict,
    checked,
    events: input.events,
    head: input.head,
    chain: {
      scope: input.chain.scope,
      verified: input.chain.verified,
      withheld: input.chain.withheld,
      firstBadPosition: input.chain.firstBadPosition,
      fault: input.chain.fault,
      mismatch: input.chain.mismatch,
      lastVerifiedHash: input.chain.lastHash,
      untrusted:
        input.chain.firstBadPosition === null
          ? null
          : `every event from position ${input.chain.firstBadPosition} on: the chain does not vouch for them`,
    },
    checkpoint: cp
      ? {
          ...cp,
          signatureValid: input.checkpoint?.signatureError === null,
          signatureError: input.checkpoint?.signatureError ?? null,
          coverage: input.checkpoint?.coverage ?? null,
        }
      : null,
    liveCheckpoints: input.live.map((s) => ({
      treeSize: s.checkpoint.treeSize,
      rootHash: s.checkpoint.rootHash,
      chainHash: s.checkpoint.chainHash,
      timestamp: s.checkpoint.timestamp,
      keyId: s.checkpoint.keyId,
      checkedAt: s.checkedAt,
      judgement: s.judgement.kind,
      detail: s.judgement.detail,
    })),
  };
}

/** The file name a report is downloaded under. */
export function reportFileName(generatedAt: Date): string {
  return `perpetua-verification-${generatedAt.toISOString().replace(/[:.]/g, '-')}.json`;
}
