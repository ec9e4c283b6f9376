// An account: its state now, its balance over time, and the size of each position it held
// over time (SVG charts), with links to the streams.

import type { LoadedLog } from '../../data/log';
import type { StreamKey } from '../../model/columns';
import { NO_FILTER } from '../../model/filter';
import { formatCount } from '../../model/format';
import { type Route, routeToHash } from '../../model/routes';
import { chartSvg } from '../chart';
import { h, link, replace } from '../dom';
import { streamLink } from './streamView';

type AccountRoute = Extract<Route, { name: 'account' }>;

export class AccountView {
  readonly element = h('section', { class: 'view account-view', data: { view: 'account' }, tabIndex: -1 });
  private log: LoadedLog | null = null;
  private accountId: string | null = null;

  /** A log was loaded (or unloaded: null). */
  setLog(log: LoadedLog | null): void {
    this.log = log;
    this.accountId = null;
    replace(this.element);
  }

  show(route: AccountRoute): void {
    if (route.accountId === this.accountId) return;
    this.accountId = route.accountId;
    this.render();
  }

  focus(): void {
    this.element.focus({ preventScroll: true });
  }

  logGrew(): void {
    this.render();
  }

  private render(): void {
    const log = this.log;
    const accountId = this.accountId;
    if (!log || accountId === null) return;
    const stream: StreamKey = { aggregateType: 'Account', aggregateId: accountId };
    const rows = log.streamRows(stream);
    if (rows.length === 0) {
      replace(
        this.element,
        h('h2', {}, 'Account ', h('code', { text: accountId })),
        h('p', { class: 'hint', text: 'No events of this account in the loaded log.' }),
      );
      return;
    }
    const end = log.columns.timestamps[log.length - 1] ?? 0;
    const state = log.stateAtVersion(stream, rows.length)?.state ?? {};
    const userId = typeof state['userId'] === 'string' ? state['userId'] : null;
    const facts = ['kind', 'balance', 'locked', 'totalDeposited', 'totalWithdrawn']
      .filter((key) => state[key] !== undefined)
      .flatMap((key) => [h('dt', { text: key }), h('dd', { class: 'mono', text: String(state[key]) })]);
    const positions = log.positionsOfAccount(accountId);
    const balance = log.balanceSeries(accountId);
    replace(
      this.element,
      h(
        'div',
        { class: 'account-header' },
        h('h2', {}, 'Account ', h('code', { text: accountId })),
        h(
          'p',
          { class: 'caption' },
          `${formatCount(rows.length)} events · `,
          streamLink(stream, rows.length),
          userId
            ? h(
                'span',
                {},
                ' · ',
                link('events of its user', routeToHash({ name: 'log', filter: { ...NO_FILTER, userId }, at: null })),
              )
            : null,
        ),
      ),
      h('dl', { class: 'facts' }, ...facts),
      h(
        'figure',
        { class: 'chart-box' },
        h('figcaption', { text: `Balance (USDT) · ${formatCount(balance.length)} points` }),
        chartSvg(balance, 'Balance over time', end),
      ),
      h('h3', { text: positions.length === 0 ? 'No positions' : `Positions (${positions.length})` }),
      ...positions.map((p) =>
        h(
          'figure',
          { class: 'chart-box' },
          h(
            'figcaption',
            {},
            `Position size · ${p.symbol} · `,
            streamLink({ aggregateType: 'Position', aggregateId: p.positionId }),
          ),
          chartSvg(log.positionSizeSeries(p.positionId), `Size of position ${p.positionId} over time`, end),
        ),
      ),
    );
  }
}
