import { describe, expect, it } from 'vitest';
import { activity } from '../../src/model/activity';

describe('activity', () => {
  it('counts events by type per bucket, the busiest types apart and the rest together', () => {
    const names = ['A', 'B', 'C'];
    // 0 s: A A B; 1 s: A C; 3 s: A.
    const times = [0, 100, 900, 1000, 1500, 3000];
    const types = [0, 0, 1, 0, 2, 0];
    const a = activity(times, types, names, times.length, 4, 1);
    expect(a.bucketMs).toBe(1000);
    expect(a.types).toEqual(['A']);
    expect(a.counts).toEqual([
      [2, 1],
      [1, 1],
      [0, 0],
      [1, 0],
    ]);
    expect(a.peak).toBe(3);
    const all = activity(times, types, names, times.length, 4, 5);
    expect(all.types).toEqual(['A', 'B', 'C']);
    expect(all.counts[0]).toEqual([2, 1, 0, 0]);
    expect(activity([], [], names, 0, 4, 2)).toMatchObject({ counts: [], peak: 0 });
  });
});
