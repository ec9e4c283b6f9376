// The global log as columns (typed arrays), as the wasm `AuditLog.rows` hands them over:
// what the list, its filters and the searches read for each of 100,000+ events without
// holding one JavaScript object per event. The columns grow (the live tail) and are never
// edited.

import type * as Wasm from '../wasm/answers.gen';

/** The core's aggregate types (generated: `web/src/wasm/answers.gen.ts`). */
export type AggregateType = Wasm.AggregateType;
export const AGGREGATE_TYPES = ['Order', 'Account', 'Position', 'Market'] as const satisfies readonly AggregateType[];

export function isAggregateType(text: string): text is AggregateType {
  return (AGGREGATE_TYPES as readonly string[]).includes(text);
}

export type StreamKey = Readonly<Wasm.StreamKey>;

/** A chunk of rows, as `AuditLog.rows(from)` returns it. */
export interface RowChunk {
  readonly positions: Float64Array;
  readonly timestamps: Float64Array;
  readonly versions: Uint32Array;
  readonly eventTypes: Uint8Array;
  readonly streams: Uint32Array;
  /** The streams first seen in this chunk, continuing the stream numbers. */
  readonly newStreams: readonly StreamKey[];
}

export class LogColumns {
  length = 0;
  positions = new Float64Array(0);
  timestamps = new Float64Array(0);
  versions = new Uint32Array(0);
  eventTypes = new Uint8Array(0);
  streams = new Uint32Array(0);
  readonly streamKeys: StreamKey[] = [];
  /** Per stream number: the aggregate type's index in AGGREGATE_TYPES. */
  private streamTypes = new Uint8Array(0);

  constructor(readonly eventTypeNames: readonly string[]) {}

  /** Appends a chunk; its rows continue the log and its streams continue the numbering. */
  append(chunk: RowChunk): void {
    const added = chunk.positions.length;
    if (
      chunk.timestamps.length !== added ||
      chunk.versions.length !== added ||
      chunk.eventTypes.length !== added ||
      chunk.streams.length !== added
    ) {
      throw new Error('the columns of a chunk differ in length');
    }
    this.reserve(this.length + added);
    this.positions.set(chunk.positions, this.length);
    this.timestamps.set(chunk.timestamps, this.length);
    this.versions.set(chunk.versions, this.length);
    this.eventTypes.set(chunk.eventTypes, this.length);
    this.streams.set(chunk.streams, this.length);
    this.length += added;
    this.addStreams(chunk.newStreams);
  }

  private addStreams(keys: readonly StreamKey[]): void {
    if (this.streamTypes.length < this.streamKeys.length + keys.length) {
      this.streamTypes = grow(this.streamTypes, this.streamKeys.length + keys.length, Uint8Array);
    }
    for (const key of keys) {
      this.streamTypes[this.streamKeys.length] = AGGREGATE_TYPES.indexOf(key.aggregateType);
      this.streamKeys.push(key);
    }
  }

  private reserve(length: number): void {
    if (this.positions.length >= length) return;
    this.positions = grow(this.positions, length, Float64Array);
    this.timestamps = grow(this.timestamps, length, Float64Array);
    this.versions = grow(this.versions, length, Uint32Array);
    this.eventTypes = grow(this.eventTypes, length, Uint8Array);
    this.streams = grow(this.streams, length, Uint32Array);
  }

  eventType(row: number): string {
    return this.eventTypeNames[this.eventTypes[row] ?? 0] ?? '?';
  }

  stream(row: number): StreamKey {
    const key = this.streamKeys[this.streams[row] ?? 0];
    if (!key) throw new Error(`row ${row} has no stream`);
    return key;
  }

  /** The aggregate type's index in AGGREGATE_TYPES of the stream at `row`. */
  aggregateTypeCode(row: number): number {
    return this.streamTypes[this.streams[row] ?? 0] ?? 0;
  }

  /** The row of global position `position`, or -1 (positions are contiguous from the first). */
  rowOfPosition(position: number): number {
    if (this.length === 0) return -1;
    const row = position - (this.positions[0] ?? 0);
    return row >= 0 && row < this.length && this.positions[row] === position ? row : -1;
  }
}

type TypedArray = Float64Array | Uint32Array | Uint8Array;

/** A copy of `array` with room for at least `length` elements (doubling, so appends are
 * amortized constant time). */
function grow<T extends TypedArray>(array: T, length: number, Type: new (length: number) => T): T {
  const grown = new Type(Math.max(length, array.length * 2, 1024));
  grown.set(array);
  return grown;
}
