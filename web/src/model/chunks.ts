// A large JSON Lines file is parsed a part at a time, each part ending at a line end, so that
// the page is never held for long: the parts' byte ranges.

const NEWLINE = 0x0a;

/** `[start, end)` ranges of about `size` bytes that together cover `bytes`, each ending just
 * after a newline (the last at the end). A file that is not JSON Lines (a JSON array: its
 * first non-blank byte is `[`) is one range: it cannot be cut. */
export function lineChunks(bytes: Uint8Array, size: number): [number, number][] {
  let first = 0;
  while (
    first < bytes.length &&
    (bytes[first] === 0x20 || bytes[first] === 0x09 || bytes[first] === 0x0d || bytes[first] === NEWLINE)
  ) {
    first += 1;
  }
  if (bytes[first] !== 0x7b /* { */) return [[0, bytes.length]];
  const ranges: [number, number][] = [];
  let start = 0;
  while (start < bytes.length) {
    const newline = bytes.indexOf(NEWLINE, Math.min(start + size, bytes.length) - 1);
    const end = newline === -1 ? bytes.length : newline + 1;
    ranges.push([start, end]);
    start = end;
  }
  return ranges;
}
