// LoadedLog over the real wasm package (host-wasm/pkg, built by scripts/web-build.sh), in
// Node: the columns match the log line by line, the live tail's appends continue them, and
// the lookups the search uses answer from the same events.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initSync, verifyChain } from 'perpetua-wasm';
import { LoadedLog } from '../../src/data/log';
import type { StoredEvent } from '../../src/data/types';
import { filterRows, NO_FILTER } from '../../src/model/filter';

const PKG = new URL('../../../host-wasm/pkg/', import.meta.url);
const DEMO = process.env['DEMO_LOG'];

describe.skipIf(!DEMO)('LoadedLog over the wasm package', () => {
  beforeAll(() => {
    initSync({ module: readFileSync(new URL('perpetua_wasm_bg.wasm', PKG)) });
  });

  const text = readFileSync(DEMO ?? '/dev/null', 'utf8');
  const lines = text.split('\n').filter((l) => l !== '');
  const events = lines.map((l) => JSON.parse(l) as StoredEvent);
  const bytes = (from: number, to: number): Uint8Array =>
    new TextEncoder().encode(`${lines.slice(from, to).join('\n')}\n`);

  it('holds every event as a row of the columns', () => {
    const log = LoadedLog.fromBytes(bytes(0, lines.length));
    expect(log.length).toBe(events.length);
    events.forEach((event, row) => {
      expect(log.columns.positions[row]).toBe(event.position);
      expect(log.columns.versions[row]).toBe(event.version);
      expect(log.columns.timestamps[row]).toBe(Date.parse(event.timestamp));
      expect(log.columns.eventType(row)).toBe(event.eventType);
      expect(log.columns.stream(row)).toEqual({ aggregateType: event.aggregateType, aggregateId: event.aggregateId });
    });
    expect(log.verify()).toMatchObject({ verified: events.length, firstBadPosition: null });
    log.free();
  });

  it('grows by appended events exactly as if loaded at once', () => {
    const log = LoadedLog.fromBytes(bytes(0, 1000));
    expect(log.verify().verified).toBe(1000);
    expect(log.append(lines.slice(990, 1700).join('\n'))).toBe(700);
    expect(log.append(lines.slice(1700).join('\n'))).toBe(lines.length - 1700);
    const whole = LoadedLog.fromBytes(bytes(0, lines.length));
    expect(log.length).toBe(whole.length);
    expect(log.columns.streamKeys).toEqual(whole.columns.streamKeys);
    expect([...log.columns.streams.subarray(0, log.length)]).toEqual([
      ...whole.columns.streams.subarray(0, whole.length),
    ]);
    expect(log.verify()).toEqual(whole.verify());
    expect(() => log.append(lines[0]?.replace('"position":1,', `"position":${lines.length + 2},`) ?? '')).toThrow(
      /missing/,
    );
    log.free();
    whole.free();
  });

  it('answers the lookups behind the search and the views', () => {
    const log = LoadedLog.fromBytes(bytes(0, lines.length));
    const liquidation = events.find((e) => e.eventType === 'PositionLiquidated');
    if (!liquidation) throw new Error('the demo has a liquidation');
    const position = { aggregateType: liquidation.aggregateType, aggregateId: liquidation.aggregateId };
    const streamRows = [...log.streamRows(position)];
    expect(streamRows.map((row) => events[row]?.aggregateId)).toEqual(streamRows.map(() => liquidation.aggregateId));
    const liquidated = log.stateAtVersion(position, liquidation.version);
    expect(liquidated?.aggregateType).toBe('Position');
    expect(liquidated?.aggregateType === 'Position' && liquidated.state.size).toBe('0');
    const view = log.versionView(position, liquidation.version);
    expect(view.state).toEqual(log.stateAtVersion(position, liquidation.version));
    expect(view.changes).toEqual(log.diff(position, liquidation.version - 1, liquidation.version));
    expect(view.changes.map((c) => c.path)).toContain('/state/size');
    const command = liquidation.metadata.causationId ?? '';
    const caused = log.events(log.rowsByCausation(command));
    expect(caused.map((e) => e.position)).toEqual(
      events.filter((e) => e.metadata.causationId === command).map((e) => e.position),
    );
    const user = events.find((e) => e.metadata.userId)?.metadata.userId ?? '';
    const userRows = log.rowsByUser(user);
    expect(userRows.length).toBe(events.filter((e) => e.metadata.userId === user).length);
    const placed = filterRows(log.columns, { ...NO_FILTER, eventType: 'OrderPlaced' }, userRows);
    expect(placed.length).toBe(
      events.filter((e) => e.metadata.userId === user && e.eventType === 'OrderPlaced').length,
    );
    expect(log.streamsWithId(liquidation.aggregateId)).toEqual([position]);
    log.free();
  });

  it('verifies a log that does not decode by its chain alone', () => {
    const broken = lines.map((line, i) =>
      i === 5 ? line.replace(/"eventType":"[A-Za-z]+"/, '"eventType":"Unheard"') : line,
    );
    const altered = new TextEncoder().encode(broken.join('\n'));
    expect(() => LoadedLog.fromBytes(altered)).toThrow(/Unheard/);
    const report = JSON.parse(verifyChain(broken.join('\n'))) as { firstBadPosition: number };
    expect(report.firstBadPosition).toBe(6);
  });
});
