import { describe, expect, it } from 'vitest';
import type { StreamKey } from '../../src/model/columns';
import { type Lookup, parseQuery, resolveQuery } from '../../src/model/search';
import { routeOf } from '../../src/model/routes';

const ORDER = '6f726472-0000-8000-8000-00000000016a';
const ACCOUNT = '61636374-0000-8000-8000-000000000007';
const POSITION = '706f736e-0000-8000-8000-00000000000a';
const USER = '75736572-0000-8000-8000-000000000006';
const COMMAND = '636d6e64-0000-8000-8000-000000000990';

describe('parseQuery', () => {
  it('reads a bare id, lower-cased', () => {
    expect(parseQuery(`  ${ORDER.toUpperCase()} `)).toEqual({ kind: 'id', scope: null, id: ORDER });
  });

  it('reads scoped ids and their aliases', () => {
    expect(parseQuery(`order:${ORDER}`)).toEqual({ kind: 'id', scope: 'order', id: ORDER });
    expect(parseQuery(`User = ${USER}`)).toEqual({ kind: 'id', scope: 'user', id: USER });
    expect(parseQuery(`corr:${COMMAND}`)).toEqual({ kind: 'id', scope: 'correlation', id: COMMAND });
    expect(parseQuery(`command:${COMMAND}`)).toEqual({ kind: 'id', scope: 'causation', id: COMMAND });
  });

  it('reads a global position and a market symbol', () => {
    expect(parseQuery('#2455')).toEqual({ kind: 'position', position: 2455 });
    expect(parseQuery('2455')).toEqual({ kind: 'position', position: 2455 });
    expect(parseQuery('btcusdt')).toEqual({ kind: 'text', text: 'btcusdt' });
  });

  it("reads a client's own order id, bare or scoped", () => {
    expect(parseQuery('alice-3')).toEqual({ kind: 'text', text: 'alice-3' });
    expect(parseQuery('client: alice-3')).toEqual({ kind: 'clientOrderId', id: 'alice-3' });
    expect(parseQuery(`cid:${ORDER}`)).toEqual({ kind: 'clientOrderId', id: ORDER });
    expect(parseQuery('client:')).toMatchObject({ kind: 'invalid' });
  });

  it('explains what it cannot read', () => {
    expect(parseQuery('')).toEqual({ kind: 'empty' });
    expect(parseQuery('#0')).toMatchObject({ kind: 'invalid' });
    expect(parseQuery('trade:123')).toEqual({ kind: 'invalid', reason: 'unknown kind of id "trade"' });
    expect(parseQuery('order:123')).toMatchObject({ kind: 'invalid', reason: '"123" is not an id (a UUID)' });
    expect(parseQuery('what happened?')).toMatchObject({ kind: 'invalid' });
  });
});

/** A log with one order, one account, one position, a user and a command. */
const lookup: Lookup = {
  streamsWithId: (id) => {
    const streams: Record<string, StreamKey> = {
      [ORDER]: { aggregateType: 'Order', aggregateId: ORDER },
      [ACCOUNT]: { aggregateType: 'Account', aggregateId: ACCOUNT },
      [POSITION]: { aggregateType: 'Position', aggregateId: POSITION },
      BTCUSDT: { aggregateType: 'Market', aggregateId: 'BTCUSDT' },
    };
    const stream = streams[id];
    return stream ? [stream] : [];
  },
  countByCorrelation: (id) => (id === COMMAND ? 7 : 0),
  countByCausation: (id) => (id === COMMAND ? 7 : 0),
  countByUser: (id) => (id === USER ? 16 : 0),
  accountsOfUser: (id) => (id === USER ? [ACCOUNT] : []),
  hasPosition: (position) => position >= 1 && position <= 2510,
  ordersWithClientOrderId: (id) =>
    id === 'alice-3'
      ? [{ aggregateType: 'Order', aggregateId: ORDER }]
      : id === 'shared'
        ? [
            { aggregateType: 'Order', aggregateId: ORDER },
            { aggregateType: 'Order', aggregateId: POSITION },
          ]
        : [],
};

const resolve = (text: string) => resolveQuery(parseQuery(text), lookup);

describe('resolveQuery', () => {
  it('opens a stream for an order or position id, the account view for an account id', () => {
    expect(resolve(ORDER)).toEqual({ view: 'stream', stream: { aggregateType: 'Order', aggregateId: ORDER } });
    expect(resolve(POSITION)).toEqual({ view: 'stream', stream: { aggregateType: 'Position', aggregateId: POSITION } });
    expect(resolve(ACCOUNT)).toEqual({ view: 'account', accountId: ACCOUNT });
    expect(resolve('BTCUSDT')).toEqual({ view: 'stream', stream: { aggregateType: 'Market', aggregateId: 'BTCUSDT' } });
  });

  it('finds a correlation id (before a command) and a user', () => {
    expect(resolve(COMMAND)).toEqual({ view: 'causation', by: 'correlation', id: COMMAND });
    expect(resolve(`command:${COMMAND}`)).toEqual({ view: 'causation', by: 'causation', id: COMMAND });
    expect(resolve(USER)).toEqual({ view: 'user', userId: USER });
  });

  it("opens the order of a client's own order id, and says when several share it", () => {
    const order = { view: 'stream', stream: { aggregateType: 'Order', aggregateId: ORDER } };
    expect(resolve('alice-3')).toEqual(order);
    expect(resolve('client:alice-3')).toEqual(order);
    expect(resolve('shared')).toEqual({ ...order, note: '2 orders have client order id "shared"; the first is shown' });
    expect(resolve('cid:BTCUSDT')).toEqual({
      view: 'none',
      message: 'no order with client order id "BTCUSDT" in the loaded log',
    });
    expect(resolve('bob-1')).toEqual({
      view: 'none',
      message: 'no market and no client order id "bob-1" in the loaded log',
    });
  });

  it('keeps to the scope asked for', () => {
    expect(resolve(`user:${ORDER}`)).toEqual({ view: 'none', message: `no user ${ORDER} in the loaded log` });
    expect(resolve(`order:${ORDER}`)).toMatchObject({ view: 'stream' });
  });

  it('says what is not there', () => {
    expect(resolve('#99999')).toEqual({ view: 'none', message: 'position 99999 is not in the loaded log' });
    expect(resolve('ETHUSDT')).toEqual({
      view: 'none',
      message: 'no market and no client order id "ETHUSDT" in the loaded log',
    });
    expect(resolve('00000000-0000-0000-0000-000000000000')).toMatchObject({ view: 'none' });
  });

  it('turns each target into the route that shows it', () => {
    expect(routeOf(resolve(USER))).toMatchObject({ name: 'log', filter: { userId: USER } });
    expect(routeOf(resolve('#12'))).toMatchObject({ name: 'log', at: 12 });
    expect(routeOf(resolve(ACCOUNT))).toEqual({ name: 'account', accountId: ACCOUNT });
    expect(routeOf(resolve('nothing here'))).toBeNull();
  });
});
