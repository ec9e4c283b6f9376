// Routes, chart layout, JSON lines with diff paths, formatting and the stream's time
// arithmetic: the logic under the views.

import { describe, expect, it } from 'vitest';
import { niceTicks, stepChart, timeTicks } from '../../src/model/chart';
import {
  describeMetadata,
  formatBytes,
  formatTick,
  formatTime,
  parseUtcInput,
  shortId,
  summarizePayload,
  toUtcInput,
} from '../../src/model/format';
import { changeKind, jsonLines } from '../../src/model/jsonview';
import { NO_FILTER } from '../../src/model/filter';
import { parseRoute, type Route, routeToHash } from '../../src/model/routes';
import { describeTail, versionAtTime } from '../../src/model/timeline';

const TYPES = ['OrderPlaced', 'PositionLiquidated'];
const ID = '706f736e-0000-8000-8000-00000000000a';

describe('routes', () => {
  it('round-trip through the hash', () => {
    const routes: Route[] = [
      { name: 'log', filter: NO_FILTER, at: null },
      { name: 'log', filter: { ...NO_FILTER, eventType: 'PositionLiquidated' }, at: 2506 },
      { name: 'stream', stream: { aggregateType: 'Position', aggregateId: ID }, version: 2 },
      { name: 'stream', stream: { aggregateType: 'Market', aggregateId: 'BTCUSDT' }, version: null },
      { name: 'causation', by: 'causation', id: ID },
      { name: 'account', accountId: ID },
    ];
    for (const route of routes) expect(parseRoute(routeToHash(route), TYPES)).toEqual(route);
    expect(routeToHash(routes[2] as Route)).toBe(`#/stream/Position/${ID}?v=2`);
  });

  it('fall back to the whole log for an empty or unknown hash', () => {
    for (const hash of ['', '#', '#/', '#/nowhere', '#/stream/Nope/x', '#/causation/other/x']) {
      expect(parseRoute(hash, TYPES)).toEqual({ name: 'log', filter: NO_FILTER, at: null });
    }
    expect(parseRoute(`#/stream/Order/${ID}?v=zero`, TYPES)).toMatchObject({ version: null });
  });
});

describe('chart layout', () => {
  const box = { width: 640, height: 200, left: 80, right: 10, top: 10, bottom: 30 };

  it('draws a step line: horizontal to the next time, then vertical to its value', () => {
    const chart = stepChart(
      [
        { position: 1, timestamp: 0, value: '100' },
        { position: 2, timestamp: 1000, value: '50' },
        { position: 3, timestamp: 2000, value: '0' },
      ],
      box,
      4000,
    );
    // x spans 0..4000 ms over 550 px; y spans 0..100 over 160 px.
    expect(chart.points).toEqual([
      { x: 80, y: 10 },
      { x: 217.5, y: 90 },
      { x: 355, y: 170 },
    ]);
    expect(chart.path).toBe('M80 10H217.5V90H355V170H630');
    expect(chart.yTicks.map((t) => t.value)).toEqual([0, 50, 100]);
  });

  it('keeps zero on the axis for negative values and handles one point', () => {
    const chart = stepChart([{ position: 9, timestamp: 5, value: '-3' }], box, 5);
    expect(chart.yTicks.map((t) => t.value)).toContain(0);
    expect(chart.path.startsWith('M80 ')).toBe(true);
    expect(stepChart([], box, 0).path).toBe('');
  });

  it('picks round tick values', () => {
    expect(niceTicks(0, 1000, 4)).toEqual([0, 500, 1000]);
    expect(niceTicks(0, 0.02, 4)).toEqual([0, 0.005, 0.01, 0.015, 0.02]);
    expect(niceTicks(7, 7, 4)).toEqual([7]);
    expect(timeTicks(0, 60_000, 4)).toEqual([0, 30_000, 60_000]);
  });
});

describe('JSON lines', () => {
  it('lays out nested values with the path of each', () => {
    const lines = jsonLines({ state: { size: '0.020', tags: ['a'] }, empty: {} });
    expect(lines.map((l) => `${'  '.repeat(l.indent)}${l.key}${l.text}${l.comma ? ',' : ''} @${l.path}`)).toEqual([
      '{ @',
      '  "state": { @/state',
      '    "size": "0.020", @/state/size',
      '    "tags": [ @/state/tags',
      '      "a" @/state/tags/0',
      '    ] @/state/tags',
      '  }, @/state',
      '  "empty": {} @/empty',
      '} @',
    ]);
  });

  it('marks changed values and the containers that hold them', () => {
    const changed = new Set(['/state/size', '/state/locks']);
    expect(changeKind('/state/size', changed)).toBe('changed');
    expect(changeKind('/state/locks/abc/amount', changed)).toBe('changed');
    expect(changeKind('/state', changed)).toBe('contains');
    expect(changeKind('', changed)).toBe('contains');
    expect(changeKind('/state/side', changed)).toBeNull();
    expect(changeKind('/state/sizeLimit', changed)).toBeNull();
  });
});

describe('formatting', () => {
  it('shows times in UTC to the millisecond and reads the inputs back as UTC', () => {
    const ms = Date.UTC(2026, 0, 1, 9, 22, 27, 6);
    expect(formatTime(ms)).toBe('2026-01-01 09:22:27.006');
    expect(toUtcInput(ms)).toBe('2026-01-01T09:22:27');
    expect(parseUtcInput('2026-01-01T09:22:27')).toBe(ms - 6);
    expect(parseUtcInput('2026-01-01T09:22:27.006Z')).toBe(ms);
    expect(parseUtcInput('')).toBeNull();
    expect(parseUtcInput('soon')).toBeNull();
  });

  it('shortens ids, sizes and payloads', () => {
    expect(shortId(ID)).toBe('706f736e…000a');
    expect(shortId('BTCUSDT')).toBe('BTCUSDT');
    expect(formatBytes(685_000)).toBe('685 KB');
    expect(formatBytes(76_099_444)).toBe('76.1 MB');
    expect(summarizePayload({ positionId: ID, size: '0.020', leverage: 20, nested: { a: 1 } })).toBe(
      'size=0.020 leverage=20',
    );
  });

  it('labels axes exactly when short and compactly when long', () => {
    expect([0, 0.005, 4000, 999_999].map(formatTick)).toEqual(['0', '0.005', '4,000', '999,999']);
    expect([1_500_000, 1_000_000_000_000, -2_000_000].map(formatTick)).toEqual(['1.5M', '1T', '-2M']);
  });

  it('describes metadata in one line', () => {
    const command = '636d6e64-0000-8000-8000-000000000990';
    expect(
      describeMetadata({
        userId: '75736572-0000-8000-8000-000000000006',
        causationId: command,
        correlationId: command,
      }),
    ).toBe('user 75736572…0006 · command 636d6e64…0990');
    expect(describeMetadata({ userId: null, causationId: command, correlationId: ID })).toBe(
      'system · command 636d6e64…0990 · correlation 706f736e…000a',
    );
    expect(describeMetadata(undefined)).toBe('');
  });
});

describe('a stream in time', () => {
  it('finds the last version at or before a time', () => {
    const times = [1000, 2000, 2000, 5000];
    expect([0, 999, 1000, 1999, 2000, 4999, 5000, 9999].map((t) => versionAtTime(times, t))).toEqual([
      0, 0, 1, 1, 3, 3, 4, 4,
    ]);
  });

  it('describes the live tail', () => {
    expect(describeTail(true, 0)).toBe('Live: waiting for events');
    expect(describeTail(true, 1234)).toBe('Live: +1,234 events');
    expect(describeTail(false, 5)).toBe('Live: reconnecting…');
  });
});
