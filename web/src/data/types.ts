// The shapes of the wasm bindings' JSON answers (and of the server's stored events).

import type { AggregateType } from '../model/columns';

export interface EventMetadata {
  readonly userId?: string | null;
  readonly correlationId?: string | null;
  readonly causationId?: string | null;
  readonly ipAddress?: string | null;
}

/** One stored event, as exported (one line of JSON Lines). */
export interface StoredEvent {
  readonly position: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly schemaVersion: number;
  readonly aggregateType: AggregateType;
  readonly aggregateId: string;
  readonly version: number;
  /** RFC 3339, UTC, to the millisecond. */
  readonly timestamp: string;
  readonly payload: unknown;
  readonly metadata: EventMetadata;
  readonly prevHash: string;
  readonly hash: string;
}

export type ChainFault =
  | { readonly kind: 'POSITION_GAP'; readonly expected: number }
  | { readonly kind: 'PREV_HASH_MISMATCH' | 'HASH_MISMATCH' | 'HEAD_MISMATCH' };

export interface VerifyReport {
  /** What was verified: the chain of a range of the global log, or each event of a stream
   * or correlation export (whose positions have gaps). Absent: a range. */
  readonly scope?: 'range' | 'stream' | 'correlation';
  readonly verified: number;
  readonly firstBadPosition: number | null;
  readonly fault: ChainFault | null;
  readonly lastHash: string;
}

/** `{aggregateType, state}`: an aggregate's state as the core folds it. */
export interface AggregateStateJson {
  readonly aggregateType: AggregateType;
  readonly state: Readonly<Record<string, unknown>>;
}

export interface Change {
  readonly path: string;
  readonly old: unknown;
  readonly new: unknown;
}

export interface HeldPosition {
  readonly positionId: string;
  readonly symbol: string;
}
