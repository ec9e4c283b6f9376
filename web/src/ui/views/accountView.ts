// An account: its state now, its balance, equity and realized PnL over time and the size of
// each position it held over time (SVG charts sharing one zoomable time window, its
// liquidations and funding marked), with links to the streams; beside them, the account as
// the read models saw it at any position of the log (available, unrealized PnL, open
// positions with their liquidation prices), folded in the browser.

import type { LoadedLog } from '../../data/log';
import type { AccountReadModel } from '../../data/types';
import type { StreamKey } from '../../model/columns';
import { NO_FILTER } from '../../model/filter';
import { formatCount, formatTime } from '../../model/format';
import { type Route, routeToHash } from '../../model/routes';
import { panWindow, type SeriesPoint, type TimeWindow, zoomWindow } from '../../model/chart';
import { CHART_BOX, chartSvg, type Marker } from '../chart';
import { h, link, replace } from '../dom';
import { foldNotice } from '../trust';
import { streamLink } from './streamView';

type AccountRoute = Extract<Route, { name: 'account' }>;

interface ChartSeries {
  readonly caption: string;
  readonly label: string;
  readonly points: readonly SeriesPoint[];
  readonly stream?: StreamKey;
}

export class AccountView {
  readonly element = h('section', { class: 'view account-view', data: { view: 'account' }, tabIndex: -1 });
  private log: LoadedLog | null = null;
  private accountId: string | null = null;
  /** The position the read model is shown at; null follows the end of the log. */
  private readModelAt: number | null = null;
  private readonly readModelInput = h('input', {
    attrs: { type: 'number', min: '1', step: '1', 'aria-label': 'Read model at position' },
  });
  private readonly readModelBody = h('div', { class: 'read-model-body' });
  private readonly charts = h('div', { class: 'charts' });
  /** What the charts show, computed once per account (zooming only redraws). */
  private chartData: { series: ChartSeries[]; markers: Marker[]; bounds: TimeWindow; end: number } | null = null;
  /** The time window every chart shows; null: the whole span. */
  private window: TimeWindow | null = null;

  constructor() {
    this.readModelInput.addEventListener('change', () => {
      const value = Number(this.readModelInput.value);
      this.readModelAt = Number.isSafeInteger(value) && value >= 1 ? value : null;
      this.renderReadModel();
    });
  }

  /** A log was loaded (or unloaded: null). */
  setLog(log: LoadedLog | null): void {
    this.log = log;
    this.accountId = null;
    replace(this.element);
  }

  show(route: AccountRoute): void {
    if (route.accountId === this.accountId) return;
    this.accountId = route.accountId;
    this.readModelAt = null;
    this.window = null;
    this.render();
  }

  focus(): void {
    this.element.focus({ preventScroll: true });
  }

  logGrew(): void {
    this.render();
  }

  /** The chain's verification changed: the account's figures are labelled anew. */
  trustChanged(): void {
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
    const folded = log.stateAtVersion(stream, rows.length);
    const account = folded?.aggregateType === 'Account' ? folded.state : null;
    const userId = account?.userId ?? null;
    const shown: readonly (readonly [string, string])[] = account
      ? [
          ['kind', account.kind],
          ['balance', account.balance],
          ['locked', account.locked],
          ['totalDeposited', account.totalDeposited],
          ['totalWithdrawn', account.totalWithdrawn],
        ]
      : [];
    const facts = shown.flatMap(([key, value]) => [h('dt', { text: key }), h('dd', { class: 'mono', text: value })]);
    const positions = log.positionsOfAccount(accountId);
    const balance = log.balanceSeries(accountId);
    const pnl = log.pnlSeries(accountId);
    const series: ChartSeries[] = [
      { caption: 'Balance (USDT)', label: 'Balance over time', points: balance },
      { caption: 'Equity (USDT): balance and unrealized PnL', label: 'Equity over time', points: pnl.equity },
      { caption: 'Realized PnL (USDT), from fills', label: 'Realized PnL over time', points: pnl.realized },
      ...positions.map((p) => ({
        caption: `Position size · ${p.symbol} · `,
        label: `Size of position ${p.positionId} over time`,
        points: log.positionSizeSeries(p.positionId),
        stream: { aggregateType: 'Position' as const, aggregateId: p.positionId },
      })),
    ];
    const start = log.columns.timestamps[rows[0] ?? 0] ?? 0;
    this.chartData = { series, markers: pnl.markers, bounds: { from: start, to: Math.max(end, start + 1) }, end };
    this.renderCharts();
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
      foldNotice(
        log.verification,
        log.columns.positions[rows[rows.length - 1] ?? 0] ?? 0,
        "This account's state, its read model and its charts",
      ),
      h('dl', { class: 'facts' }, ...facts),
      this.readModelPanel(),
      h('p', { class: 'caption' }, positions.length === 0 ? 'No positions' : `Positions (${positions.length})`),
      this.charts,
    );
  }

  /** Draws every chart over the shared window, with the zoom controls. */
  private renderCharts(): void {
    const data = this.chartData;
    if (!data) return;
    const window = this.window ?? data.bounds;
    const zoom = (factor: number, anchor = 0.5): void => {
      this.window = zoomWindow(window, factor, anchor, data.bounds);
      this.renderCharts();
    };
    const controls = h(
      'div',
      { class: 'chart-controls', role: 'group', attrs: { 'aria-label': 'Time window' } },
      h('button', { text: 'Zoom in', on: { click: () => zoom(0.5) } }),
      h('button', { text: 'Zoom out', on: { click: () => zoom(2) } }),
      h('button', {
        text: 'Whole span',
        on: {
          click: () => {
            this.window = null;
            this.renderCharts();
          },
        },
      }),
      h('span', { class: 'hint', text: ' scroll on a chart to zoom there, drag to move · ' }),
      h('span', { class: 'chart-window', text: `${formatTime(window.from)} – ${formatTime(window.to)} UTC` }),
      data.markers.length > 0
        ? h('span', { class: 'hint', text: ` · ${data.markers.length} liquidation and funding events marked` })
        : null,
    );
    replace(
      this.charts,
      controls,
      ...data.series.map((s) => {
        const svg = chartSvg(s.points, s.label, data.end, { window, markers: data.markers });
        this.wireZoom(svg, window, data.bounds);
        return h(
          'figure',
          { class: 'chart-box' },
          h(
            'figcaption',
            {},
            s.caption,
            s.stream ? streamLink(s.stream) : null,
            ` · ${formatCount(s.points.length)} points`,
          ),
          svg,
        );
      }),
    );
  }

  /** Wheel zooms around the pointer; a drag moves the window. */
  private wireZoom(svg: SVGSVGElement, window: TimeWindow, bounds: TimeWindow): void {
    const plot = CHART_BOX.width - CHART_BOX.left - CHART_BOX.right;
    const fraction = (clientX: number): number => {
      const rect = svg.getBoundingClientRect();
      return ((clientX - rect.left) * (CHART_BOX.width / rect.width) - CHART_BOX.left) / plot;
    };
    svg.addEventListener(
      'wheel',
      (event) => {
        event.preventDefault();
        this.window = zoomWindow(window, event.deltaY > 0 ? 1.25 : 0.8, fraction(event.clientX), bounds);
        this.renderCharts();
      },
      { passive: false },
    );
    svg.addEventListener('pointerdown', (down) => {
      const start = fraction(down.clientX);
      const up = (event: PointerEvent): void => {
        svg.removeEventListener('pointerup', up);
        const moved = fraction(event.clientX) - start;
        if (Math.abs(moved) < 0.01) return;
        this.window = panWindow(window, -moved * (window.to - window.from), bounds);
        this.renderCharts();
      };
      svg.setPointerCapture(down.pointerId);
      svg.addEventListener('pointerup', up);
    });
  }

  private readModelPanel(): HTMLElement {
    const latest = h('button', {
      text: 'Latest',
      on: {
        click: () => {
          this.readModelAt = null;
          this.renderReadModel();
        },
      },
    });
    const panel = h(
      'aside',
      { class: 'read-model', attrs: { 'aria-label': 'Read model' } },
      h('h3', { text: 'Read model (folded in the browser)' }),
      h('label', {}, 'At position ', this.readModelInput, ' ', latest),
      this.readModelBody,
    );
    this.renderReadModel();
    return panel;
  }

  private renderReadModel(): void {
    const log = this.log;
    const accountId = this.accountId;
    if (!log || accountId === null) return;
    const last = log.columns.positions[log.length - 1] ?? 0;
    const position = Math.min(this.readModelAt ?? last, last);
    this.readModelInput.max = String(last);
    this.readModelInput.value = String(position);
    let model: AccountReadModel;
    try {
      model = log.accountReadModel(accountId, position);
    } catch (error) {
      replace(
        this.readModelBody,
        h('p', { class: 'hint', text: error instanceof Error ? error.message : String(error) }),
      );
      return;
    }
    const summary = model.account;
    const fields: [string, string][] = summary
      ? [
          ['balance', summary.balance],
          ['locked', summary.locked],
          ['position margin', summary.positionMargin],
          ['unrealized PnL (cross)', summary.unrealizedPnl],
          ['available', summary.available],
        ]
      : [];
    const table = h(
      'table',
      { class: 'read-positions' },
      h(
        'thead',
        {},
        h('tr', {}, ...['Position', 'Size', 'Entry', 'Mark', 'uPnL', 'Liq. price'].map((t) => h('th', { text: t }))),
      ),
      h(
        'tbody',
        {},
        ...model.positions.map((p) =>
          h(
            'tr',
            { data: { position: p.positionId } },
            h(
              'td',
              {},
              streamLink({ aggregateType: 'Position', aggregateId: p.positionId }),
              ` ${p.symbol} ${p.marginMode}`,
            ),
            h('td', { class: 'mono', text: `${p.side === 'BUY' ? '+' : '−'}${p.size}` }),
            h('td', { class: 'mono', text: p.entryPrice ?? '—' }),
            h('td', { class: 'mono', text: p.markPrice ?? '—' }),
            h('td', { class: 'mono', text: p.unrealizedPnl }),
            h('td', { class: 'mono liq', text: p.liquidationPrice ?? '—' }),
          ),
        ),
      ),
    );
    replace(
      this.readModelBody,
      foldNotice(log.verification, position, `The read model at position ${formatCount(position)}`),
      summary
        ? h(
            'dl',
            { class: 'envelope' },
            ...fields.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { class: 'mono', text: v })]),
          )
        : h('p', { class: 'hint', text: `The account does not exist yet at position ${position}.` }),
      model.positions.length === 0 ? h('p', { class: 'hint', text: 'No open position.' }) : table,
    );
  }
}
