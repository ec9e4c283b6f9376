// The search box: what the user typed, then what it means in the loaded log. Parsing is
// staged — first the text becomes a query (an id with an optional scope, a market symbol or
// a client's order id, a global position), then the query is resolved against the log into
// the view to open.

import type { StreamKey } from './columns';

export const ID_SCOPES = ['order', 'account', 'position', 'user', 'correlation', 'causation'] as const;
export type IdScope = (typeof ID_SCOPES)[number];

export type Query =
  | { readonly kind: 'empty' }
  | { readonly kind: 'id'; readonly scope: IdScope | null; readonly id: string }
  /** Free text: a market symbol if one is loaded, else a client's own order id. */
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'clientOrderId'; readonly id: string }
  | { readonly kind: 'position'; readonly position: number }
  | { readonly kind: 'invalid'; readonly reason: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const SCOPE_ALIASES: Readonly<Record<string, IdScope>> = {
  order: 'order',
  account: 'account',
  position: 'position',
  user: 'user',
  correlation: 'correlation',
  corr: 'correlation',
  causation: 'causation',
  command: 'causation',
};
/** Scopes for a client's own order id (any text, not a UUID). */
const CLIENT_ORDER_ID_SCOPES = new Set(['client', 'clientorderid', 'cid']);
/** What a client order id may be: the API's limit is 64 characters, without spaces. */
const CLIENT_ORDER_ID = /^\S{1,64}$/;

/**
 * Reads the search box: `<uuid>` (any kind of id), `order:<uuid>` (likewise `account:`,
 * `position:`, `user:`, `correlation:`/`corr:`, `causation:`/`command:`), a client's own
 * order id (`client:alice-3`, or `cid:`, or bare `alice-3`), a market symbol (`BTCUSDT`), or
 * a global position (`#1234`, or `1234`).
 */
export function parseQuery(text: string): Query {
  const trimmed = text.trim();
  if (trimmed === '') return { kind: 'empty' };
  const position = /^#?(\d{1,15})$/.exec(trimmed);
  if (position) {
    const value = Number(position[1]);
    return value >= 1 ? { kind: 'position', position: value } : { kind: 'invalid', reason: 'positions start at 1' };
  }
  const scoped = /^([a-z]+)\s*[:=]\s*(.*)$/i.exec(trimmed);
  if (scoped && CLIENT_ORDER_ID_SCOPES.has((scoped[1] ?? '').toLowerCase())) {
    const id = (scoped[2] ?? '').trim();
    return CLIENT_ORDER_ID.test(id)
      ? { kind: 'clientOrderId', id }
      : { kind: 'invalid', reason: 'a client order id is 1 to 64 characters without spaces' };
  }
  if (scoped) {
    const scope = SCOPE_ALIASES[(scoped[1] ?? '').toLowerCase()];
    if (!scope) return { kind: 'invalid', reason: `unknown kind of id "${scoped[1] ?? ''}"` };
    const id = (scoped[2] ?? '').trim();
    return UUID.test(id)
      ? { kind: 'id', scope, id: id.toLowerCase() }
      : { kind: 'invalid', reason: `"${id}" is not an id (a UUID)` };
  }
  if (UUID.test(trimmed)) return { kind: 'id', scope: null, id: trimmed.toLowerCase() };
  if (CLIENT_ORDER_ID.test(trimmed)) return { kind: 'text', text: trimmed };
  return {
    kind: 'invalid',
    reason: 'type an order, account, position, user or correlation id, a client order id, a symbol or #position',
  };
}

/** What a query opens. */
export type Target =
  | { readonly view: 'stream'; readonly stream: StreamKey; readonly note?: string }
  | { readonly view: 'account'; readonly accountId: string }
  | { readonly view: 'causation'; readonly by: 'correlation' | 'causation'; readonly id: string }
  | { readonly view: 'user'; readonly userId: string }
  | { readonly view: 'event'; readonly position: number }
  | { readonly view: 'none'; readonly message: string };

/** The questions resolution asks of the loaded log. */
export interface Lookup {
  streamsWithId(id: string): readonly StreamKey[];
  /** The orders placed with a client's own order id (unique per account at most). */
  ordersWithClientOrderId(id: string): readonly StreamKey[];
  countByCorrelation(id: string): number;
  countByCausation(id: string): number;
  countByUser(id: string): number;
  accountsOfUser(id: string): readonly string[];
  hasPosition(position: number): boolean;
}

/** Resolves a query: a scoped id only as that kind; an unscoped id as a stream (an account
 * opens the account view), else a correlation id, a user, a command. */
export function resolveQuery(query: Query, log: Lookup): Target {
  switch (query.kind) {
    case 'empty':
      return { view: 'none', message: '' };
    case 'invalid':
      return { view: 'none', message: query.reason };
    case 'position':
      return log.hasPosition(query.position)
        ? { view: 'event', position: query.position }
        : { view: 'none', message: `position ${query.position} is not in the loaded log` };
    case 'text': {
      const market = /^[A-Za-z0-9]{2,20}$/.test(query.text)
        ? log.streamsWithId(query.text.toUpperCase()).find((s) => s.aggregateType === 'Market')
        : undefined;
      if (market) return { view: 'stream', stream: market };
      const orders = log.ordersWithClientOrderId(query.text);
      return orders.length > 0
        ? clientOrder(query.text, orders)
        : { view: 'none', message: `no market and no client order id "${query.text}" in the loaded log` };
    }
    case 'clientOrderId': {
      const orders = log.ordersWithClientOrderId(query.id);
      return orders.length > 0
        ? clientOrder(query.id, orders)
        : { view: 'none', message: `no order with client order id "${query.id}" in the loaded log` };
    }
    case 'id':
      return resolveId(query.scope, query.id, log);
  }
}

/** The order a client order id names; when orders of several accounts share it, the first,
 * and the search message says how many. */
function clientOrder(id: string, orders: readonly StreamKey[]): Target {
  const [first] = orders;
  if (!first) return { view: 'none', message: `no order with client order id "${id}"` };
  const note = orders.length > 1 ? `${orders.length} orders have client order id "${id}"; the first is shown` : null;
  return { view: 'stream', stream: first, ...(note ? { note } : {}) };
}

function resolveId(scope: IdScope | null, id: string, log: Lookup): Target {
  const asStream = (stream: StreamKey): Target =>
    stream.aggregateType === 'Account'
      ? { view: 'account', accountId: stream.aggregateId }
      : { view: 'stream', stream };
  const streams = log.streamsWithId(id);
  const tries: Record<IdScope, () => Target | null> = {
    order: () => pick(streams, 'Order', asStream),
    account: () => pick(streams, 'Account', asStream),
    position: () => pick(streams, 'Position', asStream),
    correlation: () => (log.countByCorrelation(id) > 0 ? { view: 'causation', by: 'correlation', id } : null),
    user: () => (log.countByUser(id) > 0 || log.accountsOfUser(id).length > 0 ? { view: 'user', userId: id } : null),
    causation: () => (log.countByCausation(id) > 0 ? { view: 'causation', by: 'causation', id } : null),
  };
  const order: readonly IdScope[] = scope
    ? [scope]
    : ['order', 'account', 'position', 'correlation', 'user', 'causation'];
  for (const kind of order) {
    const target = tries[kind]();
    if (target) return target;
  }
  return { view: 'none', message: scope ? `no ${scope} ${id} in the loaded log` : `${id} is not in the loaded log` };
}

function pick(
  streams: readonly StreamKey[],
  type: StreamKey['aggregateType'],
  open: (s: StreamKey) => Target,
): Target | null {
  const stream = streams.find((s) => s.aggregateType === type);
  return stream ? open(stream) : null;
}
