// Questions about one stream's timeline that need no wasm.

/** The last version (1-based) whose time is at or before `ms`, 0 when none is; `timestamps`
 * are the stream's event times in version order (never decreasing). */
export function versionAtTime(timestamps: ArrayLike<number>, ms: number): number {
  let low = 0;
  let high = timestamps.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((timestamps[mid] ?? Infinity) <= ms) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** A short description of what the live tail has done, for the status line. */
export function describeTail(connected: boolean, appended: number): string {
  if (!connected) return 'Live: reconnecting…';
  return appended === 0 ? 'Live: waiting for events' : `Live: +${appended.toLocaleString('en-US')} events`;
}
