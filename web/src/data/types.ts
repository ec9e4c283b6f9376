// The shapes of the wasm bindings' JSON answers and of the server's stored events: both
// generated from the Rust types, never written by hand.

import type { components } from '../api/schema.gen';
import type * as Wasm from '../wasm/answers.gen';

/** The API's schemas, generated from the server's wire types (`/openapi.json`, by
 * openapi-typescript: `scripts/api-docs.sh`); the test command fails when they are stale. */
type Schemas = components['schemas'];

/** Who and what caused an event. */
export type EventMetadata = Readonly<Schemas['EventMetadata']>;

/** One stored event, as exported (one line of JSON Lines) and as the live tail sends it. */
export type StoredEvent = Readonly<Omit<Schemas['Event'], 'metadata'>> & { readonly metadata: EventMetadata };

/** The wasm bindings' answers, generated from their Rust types (`web/src/wasm/answers.gen.ts`,
 * by ts-rs: `scripts/api-docs.sh`); the test command fails when they are stale. */
export type ChainFault = Wasm.ChainFault;

/** `AuditLog.checkpoint`: the last signed checkpoint the file carried, checked. */
export type CheckpointReport = Readonly<Wasm.CheckpointReport>;

/** `AuditLog.verify`: the chain's verification, with what was verified. */
export type VerifyReport = Readonly<Wasm.ScopedReport>;

/** `{aggregateType, state}`: an aggregate's state as the core folds it. */
export type AggregateStateJson = Readonly<Wasm.AggregateState>;

export type Change = Readonly<Wasm.Change>;

export type VersionView = Readonly<Wasm.VersionView>;

export type HeldPosition = Readonly<Wasm.HeldPosition>;

/** An account's money as the read models saw it at one position of the log. */
export type AccountSummary = Readonly<Wasm.AccountSummary>;

/** An open position valued at its market's last mark, at one position of the log. */
export type PositionView = Readonly<Wasm.PositionView>;

/** `AuditLog.accountReadModel`: an account in the read models right after `lastPosition`. */
export type AccountReadModel = Readonly<Wasm.AccountReadModel>;
