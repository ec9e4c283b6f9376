// The exchange-wide timeline: how many events of each type the log holds per interval of
// time, from the columns alone (no JSON, no wasm), for the log view's activity chart.

import { timeTickStep } from './chart';

export interface Activity {
  /** Start of the first bucket (ms since the epoch) and each bucket's length. */
  readonly from: number;
  readonly bucketMs: number;
  /** The types charted, busiest first; the rest are counted as `other`. */
  readonly types: readonly string[];
  /** Per bucket, the count of each of `types` and then of the rest (`types.length + 1`). */
  readonly counts: readonly (readonly number[])[];
  /** The largest bucket's total. */
  readonly peak: number;
}

/** Counts the events of `timestamps` (non-decreasing) by type into about `buckets` buckets
 * of a round length; the `top` busiest types apart, the rest together. */
export function activity(
  timestamps: ArrayLike<number>,
  eventTypes: ArrayLike<number>,
  typeNames: readonly string[],
  length: number,
  buckets: number,
  top: number,
): Activity {
  const first = length > 0 ? (timestamps[0] ?? 0) : 0;
  const last = length > 0 ? (timestamps[length - 1] ?? first) : first;
  const bucketMs = Math.max(1, timeTickStep(first, last + 1, buckets));
  const from = Math.floor(first / bucketMs) * bucketMs;
  const totals = new Array<number>(typeNames.length).fill(0);
  for (let row = 0; row < length; row += 1) totals[eventTypes[row] ?? 0] = (totals[eventTypes[row] ?? 0] ?? 0) + 1;
  const ranked = totals
    .map((count, type) => ({ count, type }))
    .filter((t) => t.count > 0)
    .sort((a, b) => b.count - a.count);
  const shown = ranked.slice(0, top).map((t) => t.type);
  const slot = new Array<number>(typeNames.length).fill(shown.length);
  shown.forEach((type, i) => (slot[type] = i));
  const count = length === 0 ? 0 : Math.floor((last - from) / bucketMs) + 1;
  const counts = Array.from({ length: count }, () => new Array<number>(shown.length + 1).fill(0));
  for (let row = 0; row < length; row += 1) {
    const bucket = counts[Math.floor(((timestamps[row] ?? from) - from) / bucketMs)];
    const s = slot[eventTypes[row] ?? 0] ?? shown.length;
    if (bucket) bucket[s] = (bucket[s] ?? 0) + 1;
  }
  const peak = counts.reduce(
    (max, c) =>
      Math.max(
        max,
        c.reduce((a, b) => a + b, 0),
      ),
    0,
  );
  return { from, bucketMs, types: shown.map((t) => typeNames[t] ?? '?'), counts, peak };
}
