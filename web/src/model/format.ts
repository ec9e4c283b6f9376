// How values read on screen. Times are shown in UTC, to the millisecond, because an audit
// compares them with logs written elsewhere.

/** `2026-01-01 09:00:01.234` (UTC). */
export function formatTime(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/** The value of an `<input type="datetime-local">` read as UTC, or null when empty or invalid. */
export function parseUtcInput(value: string): number | null {
  const text = value.trim();
  if (text === '') return null;
  const ms = Date.parse(/[zZ]|[+-]\d\d:\d\d$/.test(text) ? text : `${text}Z`);
  return Number.isNaN(ms) ? null : ms;
}

/** The value for an `<input type="datetime-local" step="1">` showing `ms` in UTC. */
export function toUtcInput(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19);
}

/** A UUID shortened to its first and last blocks' ends, `61636374…0007`: derived ids share
 * their first block (the kind) and differ at the end, random ones differ everywhere. Other
 * ids (symbols) whole. */
export function shortId(id: string): string {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)
    ? `${id.slice(0, 8)}…${id.slice(-4)}`
    : id;
}

/** An axis label: exact up to six digits, compact beyond (`1.5M`, `1T`). */
export function formatTick(value: number): string {
  return Math.abs(value) < 1_000_000
    ? value.toLocaleString('en-US', { maximumFractionDigits: 8 })
    : value.toLocaleString('en-US', { notation: 'compact', maximumFractionDigits: 2 });
}

/** A count with thousands separators: `142,137`. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** A byte size: `685 KB`, `1.2 MB`. */
export function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  if (bytes < 1_000_000) return `${Math.round(bytes / 1000)} KB`;
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

/** The payload's scalar fields that are not ids, as `key=value` (a glance, not the record). */
export function summarizePayload(payload: unknown): string {
  if (payload === null || typeof payload !== 'object') return '';
  return Object.entries(payload as Record<string, unknown>)
    .filter(
      ([key, value]) =>
        !key.endsWith('Id') && (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean'),
    )
    .map(([key, value]) => `${key}=${String(value)}`)
    .join(' ');
}

/** Who and what caused an event, in one line: `user 75736572…0006 · command 636d6e64…0990`
 * (the correlation id too when it differs from the command). */
export function describeMetadata(
  metadata:
    | {
        readonly userId?: string | null;
        readonly causationId?: string | null;
        readonly correlationId?: string | null;
      }
    | undefined,
): string {
  if (!metadata) return '';
  const parts = [metadata.userId ? `user ${shortId(metadata.userId)}` : 'system'];
  if (metadata.causationId) parts.push(`command ${shortId(metadata.causationId)}`);
  if (metadata.correlationId && metadata.correlationId !== metadata.causationId) {
    parts.push(`correlation ${shortId(metadata.correlationId)}`);
  }
  return parts.join(' · ');
}
