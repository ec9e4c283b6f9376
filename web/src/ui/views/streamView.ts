// One stream: the timeline of its events, the state at the selected version (folded in the
// browser by the wasm core), the changes from the version before (highlighted in the state
// and listed), the event's data and metadata on demand, and an "as of" time slider.

import type { LoadedLog } from '../../data/log';
import type { AggregateStateJson, Change } from '../../data/types';
import type { StreamKey } from '../../model/columns';
import { describeMetadata, formatCount, formatTime, shortId } from '../../model/format';
import { type Route, routeToHash, streamHash } from '../../model/routes';
import { versionAtTime } from '../../model/timeline';
import { h, link, replace } from '../dom';
import { eventDetails } from '../eventDetails';
import { foldNotice, markRow } from '../trust';
import { jsonBlock } from '../json';
import { VirtualList } from '../virtualList';
import type { Navigate } from './view';

type StreamRoute = Extract<Route, { name: 'stream' }>;

export class StreamView {
  readonly element: HTMLElement;
  private log: LoadedLog | null = null;
  private stream: StreamKey | null = null;
  private rows: Uint32Array = new Uint32Array(0);
  private timestamps: Float64Array = new Float64Array(0);
  private version = 0;
  private readonly list: VirtualList;
  private readonly title = h('h2', { class: 'stream-title' });
  private readonly summary = h('span', { class: 'caption' });
  private readonly related = h('span', { class: 'related' });
  private readonly slider = h('input', {
    attrs: { type: 'range', 'aria-label': 'As of time', min: '0', max: '0', step: '1' },
  });
  private readonly asOf = h('output', { class: 'as-of' });
  private readonly statePane = h('section', { class: 'state-pane', attrs: { 'aria-label': 'State' } });
  private readonly changesPane = h('section', { class: 'changes-pane', attrs: { 'aria-label': 'Changes' } });
  private readonly eventPane = h('section', { class: 'event-pane', attrs: { 'aria-label': 'Event' } });

  constructor(private readonly navigate: Navigate) {
    this.list = new VirtualList({
      label: 'Stream events',
      rowHeight: 60,
      className: 'timeline',
      renderRow: (element, index) => this.renderRow(element, index),
      onSelect: (index) => this.selectVersion(index + 1, 'list'),
    });
    this.slider.addEventListener('input', () => this.onSlide());
    this.slider.addEventListener('keydown', (event) => this.onSliderKey(event));
    this.element = h(
      'section',
      { class: 'view stream-view', data: { view: 'stream' } },
      h(
        'div',
        { class: 'stream-header' },
        this.title,
        this.summary,
        this.related,
        h('label', { class: 'slider' }, 'As of ', this.slider, this.asOf),
      ),
      h(
        'div',
        { class: 'stream-body' },
        h('div', { class: 'timeline-column' }, this.list.element),
        this.statePane,
        h('div', { class: 'side-column' }, this.changesPane, this.eventPane),
      ),
    );
  }

  /** A log was loaded (or unloaded: null). */
  setLog(log: LoadedLog | null): void {
    this.log = log;
    this.stream = null;
    this.rows = new Uint32Array(0);
    this.list.setCount(0);
  }

  show(route: StreamRoute): void {
    const log = this.log;
    if (!log) return;
    const same =
      this.stream?.aggregateType === route.stream.aggregateType && this.stream.aggregateId === route.stream.aggregateId;
    if (!same) this.load(log, route.stream);
    const last = this.rows.length;
    const version = Math.min(route.version ?? last, last);
    if (version >= 1 && (version !== this.version || !same)) this.selectVersion(version, 'route');
    this.list.render();
  }

  focus(): void {
    this.list.focus();
  }

  /** The chain's verification changed: the timeline and the selected version are marked anew. */
  trustChanged(): void {
    this.list.invalidate();
    if (this.version >= 1) this.selectVersion(this.version, 'route');
  }

  /** The live tail appended events: the stream may have grown. */
  logGrew(): void {
    const log = this.log;
    const stream = this.stream;
    if (!log || !stream) return;
    const before = this.rows.length;
    const selected = this.version;
    this.load(log, stream);
    this.version = selected;
    // A view on the stream's last version follows it as it grows.
    if (this.rows.length !== before && selected === before) this.selectVersion(this.rows.length, 'route');
  }

  private load(log: LoadedLog, stream: StreamKey): void {
    this.stream = stream;
    this.rows = log.streamRows(stream);
    this.timestamps = Float64Array.from(this.rows, (row) => log.columns.timestamps[row] ?? 0);
    this.version = 0;
    this.title.textContent = `${stream.aggregateType} ${stream.aggregateId}`;
    this.summary.textContent =
      this.rows.length === 0 ? 'no events in the loaded log' : `${formatCount(this.rows.length)} events`;
    this.slider.min = String(this.timestamps[0] ?? 0);
    this.slider.max = String(this.timestamps[this.timestamps.length - 1] ?? 0);
    this.slider.disabled = this.rows.length < 2;
    this.list.setCount(this.rows.length);
    replace(this.related, this.relatedLink(log, stream));
    if (this.rows.length === 0) {
      replace(this.statePane, h('p', { class: 'hint', text: 'This stream has no events in the loaded log.' }));
      replace(this.changesPane);
      replace(this.eventPane);
    }
  }

  /** The account behind an account or position stream, with its charts. */
  private relatedLink(log: LoadedLog, stream: StreamKey): HTMLElement | null {
    const first = this.rows[0] === undefined ? null : log.event(this.rows[0]);
    const payload = (first?.payload ?? {}) as { accountId?: unknown };
    const accountId = stream.aggregateType === 'Account' ? stream.aggregateId : payload.accountId;
    if (typeof accountId !== 'string' || (stream.aggregateType !== 'Account' && stream.aggregateType !== 'Position')) {
      return null;
    }
    const label =
      stream.aggregateType === 'Account' ? 'charts of this account' : `account ${shortId(accountId)} and its charts`;
    return link(label, routeToHash({ name: 'account', accountId }));
  }

  private renderRow(element: HTMLElement, index: number): void {
    const log = this.log;
    const row = this.rows[index];
    if (!log || row === undefined) return;
    const columns = log.columns;
    // Metadata is not in the columns: only the visible rows' events are read.
    const metadata = log.event(row)?.metadata;
    element.classList.add('timeline-row');
    markRow(element, log.verification, columns.positions[row] ?? 0);
    replace(
      element,
      h(
        'div',
        { class: 't-line' },
        h('span', { class: 't-ver', text: `v${columns.versions[row]}` }),
        h('span', { class: 't-type', text: columns.eventType(row) }),
      ),
      h(
        'div',
        { class: 't-line t-muted' },
        h('span', { class: 't-ver', text: `#${columns.positions[row]}` }),
        h('span', { text: formatTime(columns.timestamps[row] ?? NaN) }),
      ),
      h(
        'div',
        { class: 't-line t-muted' },
        h('span', { class: 't-ver' }),
        h('span', { class: 't-meta', text: describeMetadata(metadata) }),
      ),
    );
  }

  /** Selects a version: from the list (address updated), the route, or the slider. */
  private selectVersion(version: number, from: 'list' | 'route' | 'slider'): void {
    const log = this.log;
    const stream = this.stream;
    const row = this.rows[version - 1];
    if (!log || !stream || row === undefined) return;
    this.version = version;
    if (this.list.selectedIndex !== version - 1) this.list.select(version - 1);
    if (from !== 'slider') {
      this.slider.value = String(this.timestamps[version - 1] ?? 0);
      this.asOf.textContent = formatTime(this.timestamps[version - 1] ?? NaN);
    }
    if (from === 'list') history.replaceState(null, '', streamHash(stream.aggregateType, stream.aggregateId, version));
    const start = performance.now();
    const view = log.versionView(stream, version);
    performance.measure('state-at-version', { start, end: performance.now() });
    const event = log.event(row);
    this.renderState(version, view.state, view.changes, event?.position ?? 0);
    if (!event) return;
    const command = event.metadata.causationId;
    const caused = command
      ? h('button', {
          text: 'Everything this command caused',
          on: { click: () => this.navigate({ name: 'causation', by: 'causation', id: command }) },
        })
      : null;
    replace(
      this.eventPane,
      h('h3', { text: `Event at version ${version}` }),
      eventDetails(event, true, log.verification),
      h('div', { class: 'actions' }, caused),
    );
  }

  private renderState(
    version: number,
    state: AggregateStateJson | null,
    changes: Change[],
    lastPosition: number,
  ): void {
    const changed = new Set(changes.map((c) => c.path));
    replace(
      this.statePane,
      h('h3', {}, `State at version ${version}`, h('span', { class: 'hint', text: ' (folded in the browser)' })),
      foldNotice(this.log?.verification ?? null, lastPosition, `The state at version ${version}`),
      state
        ? jsonBlock(state, changed, 'state')
        : h('p', { class: 'hint', text: 'No state: the stream does not exist yet.' }),
    );
    const table = h(
      'table',
      { class: 'changes' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { text: 'Field (state)' }),
          h('th', { text: `v${version - 1}` }),
          h('th', { text: `v${version}` }),
        ),
      ),
      h(
        'tbody',
        {},
        ...changes.map((c) =>
          h(
            'tr',
            {},
            h('td', { class: 'mono field', text: c.path.replace(/^\/state\//, ''), title: c.path }),
            h('td', { class: 'old', text: show(c.old) }),
            h('td', { class: 'new', text: show(c.new) }),
          ),
        ),
      ),
    );
    replace(
      this.changesPane,
      h('h3', { text: version === 1 ? 'Created (from nothing)' : `Changes from version ${version - 1}` }),
      changes.length === 0 ? h('p', { class: 'hint', text: 'No field changed.' }) : table,
    );
  }

  /** Left and right step the slider from one event's time to the next (a millisecond step
   * would not move it visibly). */
  private onSliderKey(event: KeyboardEvent): void {
    const step = { ArrowLeft: -1, ArrowDown: -1, ArrowRight: 1, ArrowUp: 1 }[event.key];
    if (step === undefined || this.timestamps.length === 0) return;
    event.preventDefault();
    const now = versionAtTime(this.timestamps, Number(this.slider.value));
    const version = Math.min(this.timestamps.length, Math.max(1, now + step));
    this.slider.value = String(this.timestamps[version - 1] ?? 0);
    this.onSlide();
  }

  private onSlide(): void {
    const log = this.log;
    const stream = this.stream;
    if (!log || !stream) return;
    const ms = Number(this.slider.value);
    this.asOf.textContent = formatTime(ms);
    const state = log.stateAtTime(stream, ms);
    const version = state ? state.state.version : 0;
    if (version >= 1 && version !== this.version) {
      this.selectVersion(version, 'slider');
      history.replaceState(null, '', streamHash(stream.aggregateType, stream.aggregateId, version));
    }
  }
}

function show(value: unknown): string {
  return value === null || value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value);
}

/** A link to a stream, labelled with its type and short id. */
export function streamLink(stream: StreamKey, version: number | null = null): HTMLAnchorElement {
  return link(
    `${stream.aggregateType} ${shortId(stream.aggregateId)}`,
    routeToHash({ name: 'stream', stream, version }),
    { class: 'mono' },
  );
}
