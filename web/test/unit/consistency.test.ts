import { describe, expect, it } from 'vitest';
import { type Checkpoint, judge } from '../../src/model/consistency';

const checkpoint = (treeSize: number, rootHash: string): Checkpoint => ({
  treeSize,
  rootHash,
  chainHash: 'c'.repeat(64),
  timestamp: '2026-12-06T00:00:00.000Z',
  keyId: '0123456789abcdef',
  publicKey: 'e'.repeat(64),
  signature: 'f'.repeat(128),
});
const first = checkpoint(100, 'a'.repeat(64));
const evidence = (next: Checkpoint, proofHolds: boolean | null) => ({
  next,
  signatureError: null,
  coverage: { kind: 'COVERED' as const, treeSize: next.treeSize, after: 0 },
  proofHolds,
});

describe('judge: each new checkpoint of the live tail', () => {
  it('accepts the first, and one whose consistency proof from the last holds', () => {
    expect(judge(null, evidence(first, null)).kind).toBe('consistent');
    const next = judge(first, evidence(checkpoint(120, 'b'.repeat(64)), true));
    expect(next).toEqual({
      kind: 'consistent',
      detail:
        'the checkpoint of 120 events signed 2026-12-06T00:00:00.000Z by key 0123456789abcdef extends the one of 100',
    });
  });

  it('catches a rewritten history: another root at the same size, a shrunk log, a failed proof', () => {
    expect(judge(first, evidence(checkpoint(100, 'b'.repeat(64)), null)).kind).toBe('rewritten');
    expect(judge(first, evidence(checkpoint(90, 'b'.repeat(64)), null)).kind).toBe('rewritten');
    expect(judge(first, evidence(checkpoint(120, 'b'.repeat(64)), false)).kind).toBe('rewritten');
    const other = { ...evidence(checkpoint(120, 'b'.repeat(64)), true) };
    const mismatch = {
      kind: 'ROOT_MISMATCH' as const,
      treeSize: 120,
      expected: 'b'.repeat(64),
      actual: 'd'.repeat(64),
    };
    expect(judge(first, { ...other, coverage: mismatch }).kind).toBe('rewritten');
  });

  it('refuses a checkpoint whose signature does not verify, whatever else holds', () => {
    const forged = { ...evidence(checkpoint(120, 'b'.repeat(64)), true), signatureError: 'signature does not verify' };
    expect(judge(first, forged).kind).toBe('refused');
  });

  it('waits for the tail without judging: a checkpoint past the loaded events is not a fault', () => {
    const ahead = { ...evidence(checkpoint(120, 'b'.repeat(64)), true) };
    const truncated = { kind: 'TRUNCATED' as const, treeSize: 120, lastPosition: 110 };
    expect(judge(first, { ...ahead, coverage: truncated }).kind).toBe('consistent');
  });
});
