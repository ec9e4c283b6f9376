// The loaded log: the wasm `AuditLog` (the core's folds and the hash chain, in the browser)
// with typed answers, and the global log's columns kept beside it for the list.

import init, { AuditLog, eventTypeNames, verifyChain } from 'perpetua-wasm';
import { lineChunks } from '../model/chunks';
import { LogColumns, type StreamKey } from '../model/columns';
import type { SeriesPoint } from '../model/chart';
import type { Lookup } from '../model/search';
import type * as Wasm from '../wasm/answers.gen';
import type {
  AccountReadModel,
  AggregateStateJson,
  Change,
  CheckpointReport,
  HeldPosition,
  StoredEvent,
  VerifyReport,
  VersionView,
} from './types';

let ready: Promise<unknown> | null = null;

/** How much of a file is parsed at a time: about 5,000 events, some tens of milliseconds in
 * wasm, so the page answers between parts. */
const LOAD_PART_BYTES = 4 << 20;

/** Loads and instantiates the wasm module once (the bundler serves the `.wasm` file). */
export function loadWasm(): Promise<unknown> {
  if (ready === null) ready = init();
  return ready;
}

function parse<T>(json: string): T {
  return JSON.parse(json) as T;
}

export class LoadedLog implements Lookup {
  readonly columns: LogColumns;
  /** The chain's last verification (null before the first): what every view marks as not
   * vouched for. */
  verification: VerifyReport | null = null;

  private constructor(private readonly wasm: AuditLog) {
    this.columns = new LogColumns(parse<string[]>(eventTypeNames()));
    this.pullRows();
  }

  /** Parses and decodes a log's bytes (JSON Lines or a JSON array); throws on bad input. */
  static fromBytes(bytes: Uint8Array): LoadedLog {
    return new LoadedLog(AuditLog.fromBytes(bytes));
  }

  /** `fromBytes`, a part at a time (JSON Lines cut at line ends), letting the page paint and
   * answer between parts; `onProgress` gets the bytes parsed so far. Throws on bad input with
   * the message `fromBytes` gives for the whole file (it names the line at fault). */
  static async load(bytes: Uint8Array, onProgress: (parsed: number, total: number) => void): Promise<LoadedLog> {
    const parts = lineChunks(bytes, LOAD_PART_BYTES);
    if (parts.length <= 1) return LoadedLog.fromBytes(bytes);
    let log: LoadedLog | null = null;
    try {
      for (const [start, end] of parts) {
        const part = bytes.subarray(start, end);
        if (log === null) {
          log = new LoadedLog(AuditLog.fromBytes(part));
          // The rest estimated from the first part, with a third more for longer events: the
          // vectors grown once, not doubled (and a million events copied) near the end.
          log.wasm.reserve(Math.ceil((1.33 * log.length * (bytes.length - end)) / Math.max(1, end)));
        } else log.loadMore(part);
        onProgress(end, bytes.length);
        await yieldToPage();
      }
    } catch {
      log?.free();
      return LoadedLog.fromBytes(bytes);
    }
    if (log === null) throw new Error('the file is empty');
    return log;
  }

  private loadMore(part: Uint8Array): void {
    if (this.wasm.loadMore(part) > 0) this.pullRows();
  }

  get length(): number {
    return this.columns.length;
  }

  /** Appends events that continue the log (the live tail); returns how many were new. */
  append(jsonLines: string): number {
    const appended = this.wasm.append(jsonLines);
    if (appended > 0) this.pullRows();
    return appended;
  }

  private pullRows(): void {
    const rows = this.wasm.rows(this.columns.length);
    try {
      this.columns.append({
        positions: rows.positions,
        timestamps: rows.timestamps,
        versions: rows.versions,
        eventTypes: rows.eventTypes,
        streams: rows.streams,
        newStreams: parse<StreamKey[]>(rows.newStreams),
      });
    } finally {
      rows.free();
    }
  }

  /** Verifies the events loaded since the last call, and keeps the report as `verification`. */
  verify(): VerifyReport {
    this.verification = parse<VerifyReport>(this.wasm.verify());
    return this.verification;
  }

  /** `verify`, of at most `limit` more events (`pending`: how many are left). The report is
   * kept as `verification` once it is final: every event checked, or a fault found. */
  verifySome(limit: number): VerifyReport {
    const report = parse<VerifyReport>(this.wasm.verifySome(limit));
    if (report.pending === 0 || report.firstBadPosition !== null) this.verification = report;
    return report;
  }

  /** The last signed checkpoint the file carried: its signature and whether the file holds
   * the log it states (a cut-off tail is `TRUNCATED`). */
  checkpoint(): CheckpointReport {
    return parse(this.wasm.checkpoint());
  }

  /** A checkpoint from elsewhere (the live server's), checked as `checkpoint()` checks the
   * file's: its signature, and the loaded events against it. */
  checkCheckpoint(checkpoint: Wasm.Checkpoint): CheckpointReport {
    return parse(this.wasm.checkCheckpoint(JSON.stringify(checkpoint)));
  }

  event(row: number): StoredEvent | null {
    return parse(this.wasm.event(row));
  }

  events(rows: Uint32Array): StoredEvent[] {
    return parse(this.wasm.events(rows));
  }

  streamRows(stream: StreamKey): Uint32Array {
    return this.wasm.streamIndexes(stream.aggregateType, stream.aggregateId);
  }

  stateAtVersion(stream: StreamKey, version: number): AggregateStateJson | null {
    return parse(this.wasm.stateAtVersion(stream.aggregateType, stream.aggregateId, version));
  }

  stateAtTime(stream: StreamKey, ms: number): AggregateStateJson | null {
    return parse(this.wasm.stateAtTime(stream.aggregateType, stream.aggregateId, ms));
  }

  /** The state after `version` and the changes from the version before, in one fold. */
  versionView(stream: StreamKey, version: number): VersionView {
    return parse(this.wasm.versionView(stream.aggregateType, stream.aggregateId, version));
  }

  diff(stream: StreamKey, from: number, to: number): Change[] {
    return parse(this.wasm.diff(stream.aggregateType, stream.aggregateId, from, to));
  }

  rowsByCorrelation(id: string): Uint32Array {
    return this.wasm.byCorrelation(id);
  }

  rowsByCausation(id: string): Uint32Array {
    return this.wasm.byCausation(id);
  }

  rowsByUser(id: string): Uint32Array {
    return this.wasm.byUser(id);
  }

  balanceSeries(accountId: string): SeriesPoint[] {
    return parse(this.wasm.balanceSeries(accountId));
  }

  /** An account's equity and realized PnL over time, and its liquidations and funding. */
  pnlSeries(accountId: string): Wasm.PnlSeries {
    return parse(this.wasm.pnlSeries(accountId));
  }

  positionSizeSeries(positionId: string): SeriesPoint[] {
    return parse(this.wasm.positionSizeSeries(positionId));
  }

  /** The account as the read models saw it right after global position `position`. */
  accountReadModel(accountId: string, position: number): AccountReadModel {
    return parse(this.wasm.accountReadModel(accountId, position));
  }

  positionsOfAccount(accountId: string): HeldPosition[] {
    return parse(this.wasm.positionsOfAccount(accountId));
  }

  // Lookup, for the search box.
  streamsWithId(id: string): StreamKey[] {
    return parse(this.wasm.streamsWithId(id));
  }
  ordersWithClientOrderId(id: string): StreamKey[] {
    return parse(this.wasm.ordersWithClientOrderId(id));
  }
  countByCorrelation(id: string): number {
    return this.rowsByCorrelation(id).length;
  }
  countByCausation(id: string): number {
    return this.rowsByCausation(id).length;
  }
  countByUser(id: string): number {
    return this.rowsByUser(id).length;
  }
  accountsOfUser(id: string): string[] {
    return parse(this.wasm.accountsOfUser(id));
  }
  hasPosition(position: number): boolean {
    return this.columns.rowOfPosition(position) !== -1;
  }

  free(): void {
    this.wasm.free();
  }
}

/** Lets the page paint and handle input before the next part of a long job. */
export function yieldToPage(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Verifies a log that does not decode (so cannot be loaded): the chain alone is checked,
 * which needs only the stored envelopes. Throws when not even those parse. */
export function verifyUndecodable(bytes: Uint8Array): VerifyReport {
  const report = parse<Wasm.VerifyReport>(verifyChain(new TextDecoder().decode(bytes)));
  return { scope: 'range', withheld: 0, mismatch: null, pending: 0, ...report };
}
