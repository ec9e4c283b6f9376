// The global log: every event in order, filtered by event type, aggregate type, a time range
// or one user's events; virtualized, with the selected event's details beside it.

import type { LoadedLog } from '../../data/log';
import type { StoredEvent } from '../../data/types';
import { AGGREGATE_TYPES, isAggregateType } from '../../model/columns';
import { describeFilter, filterRows, filterToParams, indexOfRow, type LogFilter, NO_FILTER } from '../../model/filter';
import { formatCount, formatTime, parseUtcInput, shortId, toUtcInput } from '../../model/format';
import { type Route, routeToHash } from '../../model/routes';
import { h, link, replace } from '../dom';
import { eventDetails } from '../eventDetails';
import { activity } from '../../model/activity';
import { activityChart } from '../activityChart';
import { markRow } from '../trust';
import { VirtualList } from '../virtualList';
import type { Navigate } from './view';

type LogRoute = Extract<Route, { name: 'log' }>;

export class LogView {
  readonly element: HTMLElement;
  private log: LoadedLog | null = null;
  private filter: LogFilter = NO_FILTER;
  /** The filter the rows were computed for (null: none yet). */
  private filterKey: string | null = null;
  private rows: Uint32Array = new Uint32Array(0);
  private readonly list: VirtualList;
  private readonly details = h('aside', { class: 'details-pane', attrs: { 'aria-label': 'Selected event' } });
  private readonly caption = h('span', { class: 'caption', role: 'status' });
  private readonly userBar = h('div', { class: 'user-bar', hidden: true });
  /** The exchange-wide timeline (events per interval by type), drawn when opened. */
  private readonly activity = h('details', { class: 'activity-toggle' }, h('summary', { text: 'Activity over time' }));
  private readonly eventType = h('select', { attrs: { 'aria-label': 'Event type' } });
  private readonly aggregateType = h('select', { attrs: { 'aria-label': 'Aggregate type' } });
  private readonly from = h('input', { attrs: { type: 'datetime-local', step: '1', 'aria-label': 'From (UTC)' } });
  private readonly to = h('input', { attrs: { type: 'datetime-local', step: '1', 'aria-label': 'To (UTC)' } });

  constructor(private readonly navigate: Navigate) {
    this.list = new VirtualList({
      label: 'Events',
      rowHeight: 26,
      className: 'log-list',
      renderRow: (element, index) => this.renderRow(element, index),
      onSelect: (index) => this.selectRow(index, true),
      onOpen: (index) => this.openRow(index),
    });
    for (const control of [this.eventType, this.aggregateType, this.from, this.to]) {
      control.addEventListener('change', () => this.applyControls());
    }
    const clear = h('button', { text: 'Clear filters', on: { click: () => this.navigateFilter(NO_FILTER) } });
    const filters = h(
      'div',
      { class: 'filters', role: 'search' },
      h('label', {}, 'Event type ', this.eventType),
      h('label', {}, 'Aggregate ', this.aggregateType),
      h('label', {}, 'From ', this.from),
      h('label', {}, 'to ', this.to, ' UTC'),
      clear,
      this.caption,
    );
    const header = h(
      'div',
      { class: 'list-header log-row', attrs: { 'aria-hidden': 'true' } },
      h('span', { class: 'c-pos', text: 'Position' }),
      h('span', { class: 'c-time', text: 'Time (UTC)' }),
      h('span', { class: 'c-type', text: 'Event' }),
      h('span', { class: 'c-agg', text: 'Stream' }),
      h('span', { class: 'c-ver', text: 'Version' }),
    );
    this.activity.addEventListener('toggle', () => this.renderActivity());
    this.element = h(
      'section',
      { class: 'view log-view', data: { view: 'log' } },
      filters,
      this.activity,
      this.userBar,
      h('div', { class: 'split' }, h('div', { class: 'list-column' }, header, this.list.element), this.details),
    );
  }

  /** A log was loaded (or unloaded: null). */
  setLog(log: LoadedLog | null): void {
    this.log = log;
    this.renderActivity();
    this.filterKey = null;
    this.rows = new Uint32Array(0);
    this.list.setCount(0);
    replace(this.details);
    replace(
      this.eventType,
      h('option', { text: 'All', attrs: { value: '' } }),
      ...(log?.columns.eventTypeNames ?? []).map((name) => h('option', { text: name, attrs: { value: name } })),
    );
    replace(
      this.aggregateType,
      h('option', { text: 'All', attrs: { value: '' } }),
      ...AGGREGATE_TYPES.map((name) => h('option', { text: name, attrs: { value: name } })),
    );
  }

  show(route: LogRoute): void {
    const log = this.log;
    if (!log) return;
    const key = filterToParams(route.filter).toString();
    if (key !== this.filterKey) {
      this.filter = route.filter;
      this.filterKey = key;
      this.syncControls();
      this.refilter();
    }
    const row = route.at === null ? -1 : log.columns.rowOfPosition(route.at);
    const index = row === -1 ? -1 : indexOfRow(this.rows, row);
    if (index !== -1) this.selectRow(index, false);
    else if (this.list.selectedIndex === -1)
      replace(this.details, h('p', { class: 'hint', text: 'Select an event (arrow keys, Enter opens its stream).' }));
    this.list.render();
  }

  focus(): void {
    this.list.focus();
  }

  /** The live tail appended events: filter them in, keeping the list at its end if it was. */
  logGrew(): void {
    const atEnd = this.list.isAtEnd();
    this.refilter();
    this.renderActivity();
    if (atEnd) this.list.scrollToEnd();
  }

  /** The chain's verification changed: rows and details are marked anew. */
  trustChanged(): void {
    this.list.invalidate();
    if (this.list.selectedIndex !== -1) this.selectRow(this.list.selectedIndex, false);
  }

  private renderActivity(): void {
    const log = this.log;
    const summary = this.activity.querySelector('summary');
    if (!log || !this.activity.open) {
      this.activity.querySelector('.activity')?.remove();
      return;
    }
    const { timestamps, eventTypes, eventTypeNames, length } = log.columns;
    const data = activity(timestamps, eventTypes, eventTypeNames, length, 120, 6);
    const chart = activityChart(data, (fromMs, toMs) => this.navigateFilter({ ...this.filter, fromMs, toMs }));
    this.activity.querySelector('.activity')?.remove();
    this.activity.append(chart);
    if (summary) summary.textContent = 'Activity over time (all events, by type)';
  }

  private refilter(): void {
    const log = this.log;
    if (!log) return;
    const candidates = this.filter.userId === null ? undefined : log.rowsByUser(this.filter.userId);
    this.rows = filterRows(log.columns, this.filter, candidates);
    this.list.setCount(this.rows.length);
    this.caption.textContent = `${formatCount(this.rows.length)} of ${formatCount(log.length)} events · ${describeFilter(this.filter)}`;
    this.caption.title = this.caption.textContent;
    this.renderUserBar(log);
  }

  private renderUserBar(log: LoadedLog): void {
    const userId = this.filter.userId;
    this.userBar.hidden = userId === null;
    if (userId === null) return;
    const accounts = log.accountsOfUser(userId);
    replace(
      this.userBar,
      h('span', {}, 'Events on behalf of user ', h('code', { text: userId })),
      accounts.length > 0
        ? h(
            'span',
            {},
            ' · accounts: ',
            ...accounts.flatMap((id, i) => [
              i > 0 ? ', ' : '',
              link(shortId(id), routeToHash({ name: 'account', accountId: id }), { class: 'mono' }),
            ]),
          )
        : null,
      h('button', {
        text: 'Show all users',
        on: { click: () => this.navigateFilter({ ...this.filter, userId: null }) },
      }),
    );
  }

  private syncControls(): void {
    this.eventType.value = this.filter.eventType ?? '';
    this.aggregateType.value = this.filter.aggregateType ?? '';
    this.from.value = this.filter.fromMs === null ? '' : toUtcInput(this.filter.fromMs);
    this.to.value = this.filter.toMs === null ? '' : toUtcInput(this.filter.toMs);
  }

  private applyControls(): void {
    const aggregate = this.aggregateType.value;
    this.navigateFilter({
      eventType: this.eventType.value === '' ? null : this.eventType.value,
      aggregateType: isAggregateType(aggregate) ? aggregate : null,
      fromMs: parseUtcInput(this.from.value),
      // A time typed to the second covers that whole second.
      toMs: ((ms) => (ms === null ? null : ms + 999))(parseUtcInput(this.to.value)),
      userId: this.filter.userId,
    });
  }

  private navigateFilter(filter: LogFilter): void {
    this.navigate({ name: 'log', filter, at: null });
  }

  private renderRow(element: HTMLElement, index: number): void {
    const log = this.log;
    const row = this.rows[index];
    if (!log || row === undefined) return;
    const { columns } = log;
    const stream = columns.stream(row);
    element.classList.add('log-row');
    markRow(element, log.verification, columns.positions[row] ?? 0);
    replace(
      element,
      h('span', { class: 'c-pos', text: String(columns.positions[row]) }),
      h('span', { class: 'c-time', text: formatTime(columns.timestamps[row] ?? NaN) }),
      h('span', { class: 'c-type', text: columns.eventType(row) }),
      h(
        'span',
        { class: 'c-agg' },
        h('span', { class: `agg agg-${stream.aggregateType}`, text: stream.aggregateType }),
        ' ',
        h('span', { class: 'mono', text: shortId(stream.aggregateId) }),
      ),
      h('span', { class: 'c-ver', text: `v${columns.versions[row]}` }),
    );
  }

  private selectRow(index: number, updateAddress: boolean): void {
    const log = this.log;
    const row = this.rows[index];
    if (!log || row === undefined) return;
    if (this.list.selectedIndex !== index) this.list.select(index);
    const event = log.event(row);
    if (event) replace(this.details, eventDetails(event, false, log.verification), this.detailActions(event));
    if (updateAddress) {
      const hash = routeToHash({ name: 'log', filter: this.filter, at: log.columns.positions[row] ?? null });
      history.replaceState(null, '', hash);
    }
  }

  private detailActions(event: StoredEvent): HTMLElement {
    const stream = { aggregateType: event.aggregateType, aggregateId: event.aggregateId };
    const version = event.version;
    const command = event.metadata.causationId;
    return h(
      'div',
      { class: 'actions' },
      h('button', {
        text: `Open stream at v${version}`,
        on: { click: () => this.navigate({ name: 'stream', stream, version }) },
      }),
      command
        ? h('button', {
            text: 'Everything this command caused',
            on: { click: () => this.navigate({ name: 'causation', by: 'causation', id: command }) },
          })
        : null,
    );
  }

  private openRow(index: number): void {
    const log = this.log;
    const row = this.rows[index];
    if (!log || row === undefined) return;
    this.navigate({ name: 'stream', stream: log.columns.stream(row), version: log.columns.versions[row] ?? null });
  }
}
