// The live tail's checkpoints, judged: each new signed checkpoint the server hands over must
// be signed, must not shrink the log, must extend the last one seen (an RFC 9162 consistency
// proof between the two roots the viewer already holds signed, so the server's word on the
// roots is never taken), and must agree with the events the viewer holds. A server that
// rewrote history fails one of these even for an auditor who only watches the live tail.

import type * as Wasm from '../wasm/answers.gen';

export type Checkpoint = Readonly<Wasm.Checkpoint>;

/** What is known of a new checkpoint once it has been checked. */
export interface CheckpointEvidence {
  readonly next: Checkpoint;
  /** Why its signature does not verify; null when it does. */
  readonly signatureError: string | null;
  /** How the loaded events stand against it (`TRUNCATED` while the tail has not reached it). */
  readonly coverage: Wasm.Coverage | null;
  /** Whether the consistency proof from the last checkpoint holds; null when none was
   * needed (the first checkpoint, or the same size). */
  readonly proofHolds: boolean | null;
}

export type Judgement =
  | { readonly kind: 'consistent'; readonly detail: string }
  | { readonly kind: 'rewritten'; readonly detail: string }
  | { readonly kind: 'refused'; readonly detail: string };

/** Judges `evidence` about a checkpoint that follows `last` (null for the first one seen). */
export function judge(last: Checkpoint | null, evidence: CheckpointEvidence): Judgement {
  const { next, signatureError, coverage, proofHolds } = evidence;
  const of = (c: Checkpoint): string => `the checkpoint of ${c.treeSize} events signed ${c.timestamp}`;
  if (signatureError !== null) {
    return { kind: 'refused', detail: `${of(next)} does not verify: ${signatureError}` };
  }
  if (last !== null && next.treeSize < last.treeSize) {
    return { kind: 'rewritten', detail: `${of(next)} is smaller than ${of(last)}: the log shrank` };
  }
  if (last !== null && next.treeSize === last.treeSize && next.rootHash !== last.rootHash) {
    return { kind: 'rewritten', detail: `${of(next)} has another root than ${of(last)} at the same size` };
  }
  if (last !== null && proofHolds === false) {
    return { kind: 'rewritten', detail: `${of(next)} does not extend ${of(last)}: its consistency proof fails` };
  }
  if (coverage?.kind === 'CHAIN_HASH_MISMATCH' || coverage?.kind === 'ROOT_MISMATCH') {
    return { kind: 'rewritten', detail: `${of(next)} is not the log loaded here (${coverage.kind})` };
  }
  const extended = last === null ? 'the first seen' : `extends the one of ${last.treeSize}`;
  return { kind: 'consistent', detail: `${of(next)} by key ${next.keyId} ${extended}` };
}
