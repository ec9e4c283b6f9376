// The shapes of the wasm bindings' JSON answers (and of the server's stored events).

import type { components } from '../api/schema.gen';
import type { AggregateType } from '../model/columns';

/** The API's schemas, generated from the server's wire types (`/openapi.json`, by
 * openapi-typescript: `scripts/api-docs.sh`); the test command fails when they are stale. */
type Schemas = components['schemas'];

/** Who and what caused an event. */
export type EventMetadata = Readonly<Schemas['EventMetadata']>;

/** One stored event, as exported (one line of JSON Lines) and as the live tail sends it. */
export type StoredEvent = Readonly<Omit<Schemas['Event'], 'metadata'>> & { readonly metadata: EventMetadata };

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
  /** Events of a stream export whose metadata the server withheld from this reader (another
   * user's identity): linked to their neighbours, but their hashes cannot be recomputed. */
  readonly withheld?: number;
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

/** An account's money as the read models saw it at one position of the log. */
export interface AccountSummary {
  readonly accountId: string;
  readonly userId: string;
  readonly kind: string;
  readonly balance: string;
  readonly locked: string;
  readonly available: string;
  readonly positionMargin: string;
  readonly unrealizedPnl: string;
}

/** An open position valued at its market's last mark, at one position of the log. */
export interface PositionView {
  readonly positionId: string;
  readonly symbol: string;
  readonly side: 'BUY' | 'SELL';
  readonly size: string;
  readonly entryPrice: string | null;
  readonly margin: string;
  readonly leverage: number;
  readonly marginMode: string;
  readonly markPrice: string | null;
  readonly unrealizedPnl: string;
  readonly liquidationPrice: string | null;
  readonly realizedPnl: string;
}

/** `AuditLog.accountReadModel`: an account in the read models right after `lastPosition`. */
export interface AccountReadModel {
  readonly lastPosition: number;
  readonly account: AccountSummary | null;
  readonly positions: readonly PositionView[];
}
