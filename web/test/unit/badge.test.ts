import { describe, expect, it } from 'vitest';
import type { StoredEvent, VerifyReport } from '../../src/data/types';
import { badgeText } from '../../src/ui/badge';

const report: VerifyReport = {
  scope: 'range',
  withheld: 0,
  verified: 2454,
  firstBadPosition: 2455,
  fault: { kind: 'HASH_MISMATCH' },
  lastHash: 'ab',
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
});
