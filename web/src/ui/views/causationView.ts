// Everything one command (its causationId) or one request (its correlationId) produced,
// across streams: the order, its fills, the counterparties' orders, the accounts and
// positions it touched. Each event opens its stream at that version.

import type { LoadedLog } from '../../data/log';
import type { StoredEvent } from '../../data/types';
import { formatCount, shortId, summarizePayload } from '../../model/format';
import type { Route } from '../../model/routes';
import { h, replace } from '../dom';
import { markRow } from '../trust';
import { VirtualList } from '../virtualList';
import { streamLink } from './streamView';
import type { Navigate } from './view';

type CausationRoute = Extract<Route, { name: 'causation' }>;

export class CausationView {
  readonly element: HTMLElement;
  private log: LoadedLog | null = null;
  private events: StoredEvent[] = [];
  private key = '';
  private readonly header = h('div', { class: 'causation-header' });
  private readonly streams = h('div', { class: 'streams-touched', attrs: { 'aria-label': 'Streams touched' } });
  private readonly list: VirtualList;

  constructor(private readonly navigate: Navigate) {
    this.list = new VirtualList({
      label: 'Events caused',
      rowHeight: 30,
      className: 'causation-list',
      openOnClick: true,
      renderRow: (element, index) => this.renderRow(element, index),
      onOpen: (index) => this.open(index),
    });
    this.element = h(
      'section',
      { class: 'view causation-view', data: { view: 'causation' } },
      this.header,
      this.streams,
      h('div', { class: 'list-column' }, this.list.element),
    );
  }

  /** A log was loaded (or unloaded: null). */
  setLog(log: LoadedLog | null): void {
    this.log = log;
    this.key = '';
    this.events = [];
    this.list.setCount(0);
  }

  show(route: CausationRoute): void {
    const log = this.log;
    if (!log) return;
    const key = `${route.by}/${route.id}`;
    if (key === this.key) return;
    this.key = key;
    let rows: Uint32Array;
    try {
      rows = route.by === 'causation' ? log.rowsByCausation(route.id) : log.rowsByCorrelation(route.id);
    } catch (error) {
      replace(this.header, h('p', { class: 'error', text: String(error) }));
      rows = new Uint32Array(0);
    }
    this.events = log.events(rows);
    this.renderHeader(route);
    this.list.setCount(this.events.length);
    this.list.select(this.events.length > 0 ? 0 : -1);
  }

  focus(): void {
    this.list.focus();
  }

  logGrew(): void {
    const key = this.key;
    const [by, id] = key.split('/');
    this.key = '';
    if ((by === 'causation' || by === 'correlation') && id) this.show({ name: 'causation', by, id });
  }

  private renderHeader(route: CausationRoute): void {
    const first = this.events[0];
    const groups = new Map<string, StoredEvent[]>();
    for (const event of this.events) {
      const key = `${event.aggregateType}/${event.aggregateId}`;
      groups.set(key, [...(groups.get(key) ?? []), event]);
    }
    const what = route.by === 'causation' ? 'Command' : 'Correlation';
    replace(
      this.header,
      h('h2', {}, `${what} `, h('code', { text: route.id })),
      h(
        'p',
        { class: 'caption' },
        first
          ? `${formatCount(this.events.length)} events across ${groups.size} streams · ${first.timestamp}` +
              (first.metadata.userId ? ` · on behalf of user ${shortId(first.metadata.userId)}` : ' · by the system')
          : 'No event in the loaded log has this id.',
      ),
    );
    replace(
      this.streams,
      ...[...groups.values()].map((events) => {
        const last = events[events.length - 1] as StoredEvent;
        return h(
          'div',
          { class: 'stream-chip' },
          streamLink({ aggregateType: last.aggregateType, aggregateId: last.aggregateId }, last.version),
          h('span', { class: 'hint', text: ` ${events.map((e) => e.eventType).join(', ')}` }),
        );
      }),
    );
  }

  /** The chain's verification changed: the rows are marked anew. */
  trustChanged(): void {
    this.list.invalidate();
  }

  private renderRow(element: HTMLElement, index: number): void {
    const event = this.events[index];
    if (!event) return;
    element.classList.add('causation-row');
    markRow(element, this.log?.verification ?? null, event.position);
    replace(
      element,
      h('span', { class: 'c-pos', text: String(event.position) }),
      h('span', { class: 'c-type', text: event.eventType }),
      h(
        'span',
        { class: 'c-agg' },
        h('span', { class: `agg agg-${event.aggregateType}`, text: event.aggregateType }),
        ' ',
        h('span', { class: 'mono', text: shortId(event.aggregateId) }),
      ),
      h('span', { class: 'c-ver', text: `v${event.version}` }),
      h('span', { class: 'c-summary', text: summarizePayload(event.payload) }),
    );
  }

  private open(index: number): void {
    const event = this.events[index];
    if (!event) return;
    this.navigate({
      name: 'stream',
      stream: { aggregateType: event.aggregateType, aggregateId: event.aggregateId },
      version: event.version,
    });
  }
}
