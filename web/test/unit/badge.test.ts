import { describe, expect, it } from 'vitest';
import type { CheckpointReport, StoredEvent, VerifyReport } from '../../src/data/types';
import { badgeText } from '../../src/ui/badge';

const report: VerifyReport = {
  scope: 'range',
  withheld: 0,
  verified: 2454,
  firstBadPosition: 2455,
  fault: { kind: 'HASH_MISMATCH' },
  lastHash: 'ab',
  mismatch: { field: 'hash', expected: 'cd', actual: 'ef' },
  pending: 0,
};
const event = {
  position: 2455,
  eventType: 'PositionOpened',
  aggregateType: 'Position',
  aggregateId: '706f736e-0000-8000-8000-00000000000a',
  version: 1,
} as StoredEvent;

describe('badgeText', () => {
  it('says verified with the count of events', () => {
    const good = { ...report, verified: 2510, firstBadPosition: null, fault: null };
    expect(badgeText({ kind: 'report', report: good, badEvent: null })).toEqual({
      text: 'Chain verified',
      detail: '2,510 events',
      tone: 'good',
    });
  });

  it('says what was verified of a stream export, whose positions have gaps', () => {
    const good = { ...report, scope: 'stream' as const, verified: 2, firstBadPosition: null, fault: null };
    expect(badgeText({ kind: 'report', report: good, badEvent: null })).toEqual({
      text: 'Events verified',
      detail: '2 events of one stream, each hash checked',
      tone: 'good',
    });
  });

  it('does not call events verified whose metadata was withheld', () => {
    const partly = {
      ...report,
      scope: 'stream' as const,
      verified: 5,
      withheld: 2,
      firstBadPosition: null,
      fault: null,
    };
    expect(badgeText({ kind: 'report', report: partly, badEvent: null })).toEqual({
      text: '2 events could not be verified',
      detail:
        "5 events of one stream each hash checked; 2 with another user's identity withheld, their hashes not checkable here",
      tone: 'neutral',
    });
  });

  it('names the first bad position, the fault and the stream of the event there', () => {
    expect(badgeText({ kind: 'report', report, badEvent: event })).toEqual({
      text: 'Chain broken at position 2455',
      detail: 'HASH_MISMATCH · Position 706f736e…000a v1',
      tone: 'bad',
    });
  });

  it('names a gap by the missing position even without an event there', () => {
    const gap = { ...report, firstBadPosition: 17, fault: { kind: 'POSITION_GAP' as const, expected: 17 } };
    expect(badgeText({ kind: 'report', report: gap, badEvent: null })).toMatchObject({
      text: 'Chain broken at position 17',
      detail: 'POSITION_GAP',
    });
  });

  describe('with the signed checkpoint the file carried', () => {
    const good = { ...report, verified: 2510, firstBadPosition: null, fault: null };
    const checkpoint = {
      treeSize: 2510,
      chainHash: 'aa',
      rootHash: 'bb',
      timestamp: '2026-12-01T12:00:00.000Z',
      keyId: 'f115b758b3b6b44f',
      publicKey: 'cc',
      signature: 'dd',
    };
    const under = (coverage: CheckpointReport['coverage'], signatureError: string | null = null) => ({
      kind: 'report' as const,
      report: good,
      badEvent: null,
      checkpoint: { checkpoint, coverage, signatureError },
    });

    it('names the checkpoint a whole export is under', () => {
      expect(badgeText(under({ kind: 'COVERED', treeSize: 2510, after: 0 }))).toEqual({
        text: 'Chain verified',
        detail: '2,510 events · checkpoint of 2,510 signed 2026-12-01T12:00:00.000Z by key f115b758b3b6b44f',
        tone: 'good',
      });
    });

    it('refuses an export cut short of its checkpoint, though its chain verifies', () => {
      const text = badgeText(under({ kind: 'TRUNCATED', treeSize: 2510, lastPosition: 2507 }));
      expect(text.text).toBe('Export cut short of its checkpoint');
      expect(text.detail).toContain('covers 2,510 events; the file ends at position 2,507');
      expect(text.tone).toBe('bad');
    });

    it('refuses a log rewritten under its checkpoint, and a forged signature', () => {
      const rewritten = badgeText(under({ kind: 'ROOT_MISMATCH', treeSize: 2510, expected: 'bb', actual: 'ee' }));
      expect([rewritten.text, rewritten.tone]).toEqual(['Not the log its checkpoint states', 'bad']);
      const forged = badgeText(under({ kind: 'COVERED', treeSize: 2510, after: 0 }, 'the signature does not verify'));
      expect([forged.text, forged.tone]).toEqual(['Checkpoint signature invalid', 'bad']);
    });

    it("follows the live server's checkpoints, and says when one rewrote history", () => {
      const covered = under({ kind: 'COVERED', treeSize: 2510, after: 0 });
      const consistent = { kind: 'consistent' as const, detail: 'the checkpoint of 2,600 extends the one of 2,510' };
      expect(badgeText({ ...covered, live: consistent })).toMatchObject({
        text: 'Chain verified',
        detail: expect.stringContaining('live: the checkpoint of 2,600 extends the one of 2,510') as string,
        tone: 'good',
      });
      const rewritten = { kind: 'rewritten' as const, detail: 'another root at the same size' };
      expect(badgeText({ ...covered, live: rewritten })).toEqual({
        text: 'History rewritten',
        detail: 'another root at the same size',
        tone: 'bad',
      });
    });

    it('leaves a broken chain as the verdict', () => {
      const broken = { ...under({ kind: 'TRUNCATED', treeSize: 2510, lastPosition: 2507 }), report };
      expect(badgeText(broken).text).toBe('Chain broken at position 2455');
    });
  });
});
