// The global log's filters: event type, aggregate type, a time range and, after a search by
// user, the rows of one user. A filter is plain data, kept in the page's address so a view
// can be linked and reloaded.

import { AGGREGATE_TYPES, type AggregateType, isAggregateType, type LogColumns } from './columns';
import { formatTime, parseUtcInput } from './format';

export interface LogFilter {
  readonly eventType: string | null;
  readonly aggregateType: AggregateType | null;
  /** Inclusive bounds, milliseconds since the epoch. */
  readonly fromMs: number | null;
  readonly toMs: number | null;
  /** Only the events recorded on behalf of this user. */
  readonly userId: string | null;
}

export const NO_FILTER: LogFilter = { eventType: null, aggregateType: null, fromMs: null, toMs: null, userId: null };

export function isEmptyFilter(filter: LogFilter): boolean {
  return (
    filter.eventType === null &&
    filter.aggregateType === null &&
    filter.fromMs === null &&
    filter.toMs === null &&
    filter.userId === null
  );
}

/** The rows (indexes into the columns, ascending) that pass the filter. `candidates`, when
 * given, are the only rows considered (the user's rows, ascending); the user filter itself
 * is resolved by the caller, which has the log. */
export function filterRows(columns: LogColumns, filter: LogFilter, candidates?: Uint32Array): Uint32Array {
  const eventType = filter.eventType === null ? -1 : columns.eventTypeNames.indexOf(filter.eventType);
  if (filter.eventType !== null && eventType === -1) return new Uint32Array(0);
  const aggregateType = filter.aggregateType === null ? -1 : AGGREGATE_TYPES.indexOf(filter.aggregateType);
  const fromMs = filter.fromMs ?? -Infinity;
  const toMs = filter.toMs ?? Infinity;
  const { eventTypes, timestamps } = columns;
  const keep = (row: number): boolean =>
    (eventType === -1 || eventTypes[row] === eventType) &&
    (aggregateType === -1 || columns.aggregateTypeCode(row) === aggregateType) &&
    (timestamps[row] ?? NaN) >= fromMs &&
    (timestamps[row] ?? NaN) <= toMs;
  const out = new Uint32Array(candidates ? candidates.length : columns.length);
  let n = 0;
  if (candidates) {
    for (const row of candidates) if (row < columns.length && keep(row)) out[n++] = row;
  } else {
    for (let row = 0; row < columns.length; row += 1) if (keep(row)) out[n++] = row;
  }
  return out.slice(0, n);
}

/** The filter as query parameters (`type`, `aggregate`, `from`, `to`, `user`). */
export function filterToParams(filter: LogFilter): URLSearchParams {
  const params = new URLSearchParams();
  if (filter.eventType !== null) params.set('type', filter.eventType);
  if (filter.aggregateType !== null) params.set('aggregate', filter.aggregateType);
  if (filter.fromMs !== null) params.set('from', new Date(filter.fromMs).toISOString());
  if (filter.toMs !== null) params.set('to', new Date(filter.toMs).toISOString());
  if (filter.userId !== null) params.set('user', filter.userId);
  return params;
}

/** The filter named by query parameters; unknown or malformed values are ignored. */
export function filterFromParams(params: URLSearchParams, eventTypeNames: readonly string[]): LogFilter {
  const type = params.get('type');
  const aggregate = params.get('aggregate');
  const user = params.get('user');
  return {
    eventType: type !== null && eventTypeNames.includes(type) ? type : null,
    aggregateType: aggregate !== null && isAggregateType(aggregate) ? aggregate : null,
    fromMs: parseUtcInput(params.get('from') ?? ''),
    toMs: parseUtcInput(params.get('to') ?? ''),
    userId: user !== null && /^[0-9a-f-]{36}$/i.test(user) ? user.toLowerCase() : null,
  };
}

/** A one-line description of the filter, for the list's caption. */
export function describeFilter(filter: LogFilter): string {
  const parts: string[] = [];
  if (filter.eventType !== null) parts.push(filter.eventType);
  if (filter.aggregateType !== null) parts.push(`${filter.aggregateType} streams`);
  if (filter.fromMs !== null) parts.push(`from ${formatTime(filter.fromMs)}`);
  if (filter.toMs !== null) parts.push(`to ${formatTime(filter.toMs)}`);
  if (filter.userId !== null) parts.push(`user ${filter.userId}`);
  return parts.length === 0 ? 'all events' : parts.join(', ');
}

/** Index of `row` in the ascending `rows`, or -1. */
export function indexOfRow(rows: Uint32Array, row: number): number {
  let low = 0;
  let high = rows.length - 1;
  while (low <= high) {
    const mid = (low + high) >>> 1;
    const value = rows[mid] ?? 0;
    if (value === row) return mid;
    if (value < row) low = mid + 1;
    else high = mid - 1;
  }
  return -1;
}
