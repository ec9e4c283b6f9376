import { describe, expect, it } from 'vitest';
import { LogColumns, type StreamKey } from '../../src/model/columns';
import {
  describeFilter,
  filterFromParams,
  filterRows,
  filterToParams,
  indexOfRow,
  type LogFilter,
  NO_FILTER,
} from '../../src/model/filter';

const TYPES = ['OrderPlaced', 'BalanceLocked', 'PositionOpened'];
const order: StreamKey = { aggregateType: 'Order', aggregateId: 'o1' };
const account: StreamKey = { aggregateType: 'Account', aggregateId: 'a1' };
const position: StreamKey = { aggregateType: 'Position', aggregateId: 'p1' };

/** Six events: placed (order), locked (account), twice, then a position opening, at 1 s apart. */
function columns(): LogColumns {
  const log = new LogColumns(TYPES);
  log.append({
    positions: Float64Array.from([1, 2, 3, 4]),
    timestamps: Float64Array.from([1000, 1000, 2000, 2000]),
    versions: Uint32Array.from([1, 1, 1, 2]),
    eventTypes: Uint8Array.from([0, 1, 0, 1]),
    streams: Uint32Array.from([0, 1, 2, 1]),
    newStreams: [order, account, { aggregateType: 'Order', aggregateId: 'o2' }],
  });
  log.append({
    positions: Float64Array.from([5, 6]),
    timestamps: Float64Array.from([3000, 3000]),
    versions: Uint32Array.from([3, 1]),
    eventTypes: Uint8Array.from([1, 2]),
    streams: Uint32Array.from([1, 3]),
    newStreams: [position],
  });
  return log;
}

const rows = (filter: Partial<LogFilter>, candidates?: Uint32Array): number[] => [
  ...filterRows(columns(), { ...NO_FILTER, ...filter }, candidates),
];

describe('filterRows', () => {
  it('keeps every row without a filter', () => {
    expect(rows({})).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('filters by event type and by aggregate type, together', () => {
    expect(rows({ eventType: 'BalanceLocked' })).toEqual([1, 3, 4]);
    expect(rows({ aggregateType: 'Order' })).toEqual([0, 2]);
    expect(rows({ aggregateType: 'Position' })).toEqual([5]);
    expect(rows({ eventType: 'OrderPlaced', aggregateType: 'Account' })).toEqual([]);
    expect(rows({ eventType: 'NoSuchType' })).toEqual([]);
  });

  it('filters by an inclusive time range', () => {
    expect(rows({ fromMs: 2000 })).toEqual([2, 3, 4, 5]);
    expect(rows({ toMs: 2000 })).toEqual([0, 1, 2, 3]);
    expect(rows({ fromMs: 2000, toMs: 2000 })).toEqual([2, 3]);
    expect(rows({ fromMs: 2001, toMs: 2999 })).toEqual([]);
  });

  it("considers only the candidate rows when given (a user's events)", () => {
    expect(rows({ eventType: 'BalanceLocked' }, Uint32Array.from([0, 3, 4, 99]))).toEqual([3, 4]);
  });
});

describe('the filter in the address', () => {
  it('round-trips through query parameters', () => {
    const filter: LogFilter = {
      eventType: 'PositionOpened',
      aggregateType: 'Position',
      fromMs: Date.UTC(2026, 0, 1, 9, 0, 0),
      toMs: Date.UTC(2026, 0, 1, 10, 0, 0, 999),
      userId: '75736572-0000-8000-8000-000000000006',
    };
    expect(filterFromParams(filterToParams(filter), TYPES)).toEqual(filter);
    expect(filterToParams(NO_FILTER).toString()).toBe('');
  });

  it('ignores unknown and malformed values', () => {
    const params = new URLSearchParams('type=Nope&aggregate=Thing&from=yesterday&user=bob');
    expect(filterFromParams(params, TYPES)).toEqual(NO_FILTER);
  });

  it('describes itself in words', () => {
    expect(describeFilter(NO_FILTER)).toBe('all events');
    expect(describeFilter({ ...NO_FILTER, eventType: 'OrderPlaced', aggregateType: 'Order', fromMs: 0 })).toBe(
      'OrderPlaced, Order streams, from 1970-01-01 00:00:00.000',
    );
  });
});

describe('indexOfRow', () => {
  it('finds a row in an ascending list or says -1', () => {
    const list = Uint32Array.from([2, 5, 9, 14]);
    expect([2, 5, 9, 14].map((row) => indexOfRow(list, row))).toEqual([0, 1, 2, 3]);
    expect([0, 3, 15].map((row) => indexOfRow(list, row))).toEqual([-1, -1, -1]);
    expect(indexOfRow(new Uint32Array(0), 1)).toBe(-1);
  });
});

describe('LogColumns', () => {
  it('grows by chunks, numbering streams in order of appearance', () => {
    const log = columns();
    expect(log.length).toBe(6);
    expect(log.stream(4)).toEqual(account);
    expect(log.stream(5)).toEqual(position);
    expect(log.eventType(5)).toBe('PositionOpened');
    expect(log.aggregateTypeCode(5)).toBe(2);
  });

  it('finds the row of a global position, also for a range not starting at 1', () => {
    const log = new LogColumns(TYPES);
    log.append({
      positions: Float64Array.from([41, 42, 43]),
      timestamps: new Float64Array(3),
      versions: new Uint32Array(3),
      eventTypes: new Uint8Array(3),
      streams: new Uint32Array(3),
      newStreams: [order],
    });
    expect([41, 43, 40, 44].map((p) => log.rowOfPosition(p))).toEqual([0, 2, -1, -1]);
  });

  it('refuses a chunk whose columns differ in length', () => {
    const log = new LogColumns(TYPES);
    expect(() =>
      log.append({
        positions: Float64Array.from([1, 2]),
        timestamps: new Float64Array(1),
        versions: new Uint32Array(2),
        eventTypes: new Uint8Array(2),
        streams: new Uint32Array(2),
        newStreams: [order],
      }),
    ).toThrow(/differ in length/);
  });

  it('keeps 100,000 rows appended in small chunks (the live tail)', () => {
    const log = new LogColumns(TYPES);
    for (let chunk = 0; chunk < 1000; chunk += 1) {
      const base = chunk * 100;
      log.append({
        positions: Float64Array.from({ length: 100 }, (_, i) => base + i + 1),
        timestamps: Float64Array.from({ length: 100 }, (_, i) => base + i),
        versions: Uint32Array.from({ length: 100 }, (_, i) => base + i + 1),
        eventTypes: new Uint8Array(100),
        streams: new Uint32Array(100),
        newStreams: chunk === 0 ? [order] : [],
      });
    }
    expect(log.length).toBe(100_000);
    expect(log.rowOfPosition(100_000)).toBe(99_999);
    expect(log.versions[54_321]).toBe(54_322);
  });
});
