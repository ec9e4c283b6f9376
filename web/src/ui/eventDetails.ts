// One stored event laid out for reading: its envelope as a definition list with links to
// its stream, user and command, and its payload and metadata as JSON.

import type { StoredEvent, VerifyReport } from '../data/types';
import { routeToHash, streamHash } from '../model/routes';
import { NO_FILTER } from '../model/filter';
import { h, link } from './dom';
import { jsonBlock } from './json';
import { eventNotice } from './trust';

function row(term: string, value: Node | string): HTMLElement[] {
  return [h('dt', { text: term }), h('dd', {}, value)];
}

function idLink(id: string | null | undefined, hash: (id: string) => string): Node | string {
  return id ? link(id, hash(id), { class: 'mono' }) : '—';
}

/** The envelope of an event. With `collapsible`, the payload and metadata are behind
 * disclosure toggles (shown on demand); otherwise they are shown. Under a chain `report` that
 * does not vouch for the event, a warning comes first (with the hashes, for the bad one). */
export function eventDetails(event: StoredEvent, collapsible: boolean, report: VerifyReport | null): HTMLElement {
  const { metadata } = event;
  const envelope = h(
    'dl',
    { class: 'envelope' },
    ...row('Position', String(event.position)),
    ...row('Time', event.timestamp),
    ...row(
      'Stream',
      link(
        `${event.aggregateType} ${event.aggregateId}`,
        streamHash(event.aggregateType, event.aggregateId, event.version),
        { class: 'mono' },
      ),
    ),
    ...row('Version', String(event.version)),
    ...row('Schema', `v${event.schemaVersion}`),
    ...row(
      'User',
      idLink(metadata.userId, (id) => routeToHash({ name: 'log', filter: { ...NO_FILTER, userId: id }, at: null })),
    ),
    ...row(
      'Command',
      idLink(metadata.causationId, (id) => routeToHash({ name: 'causation', by: 'causation', id })),
    ),
    ...row(
      'Correlation',
      idLink(metadata.correlationId, (id) => routeToHash({ name: 'causation', by: 'correlation', id })),
    ),
    ...row('IP address', metadata.ipAddress ?? '—'),
    ...row('Hash', h('span', { class: 'mono hash', text: event.hash, title: `prevHash ${event.prevHash}` })),
  );
  const payload = jsonBlock(event.payload, new Set(), 'payload');
  const meta = jsonBlock(event.metadata, new Set(), 'metadata');
  const section = (title: string, body: HTMLElement): HTMLElement =>
    collapsible
      ? h(
          'details',
          { class: 'json-toggle', data: { section: title.toLowerCase() } },
          h('summary', { text: title }),
          body,
        )
      : h('section', { data: { section: title.toLowerCase() } }, h('h3', { text: title }), body);
  return h(
    'div',
    { class: 'event-details' },
    h('h2', { class: 'event-type', text: event.eventType }),
    eventNotice(event, report),
    envelope,
    section('Data', payload),
    section('Metadata', meta),
  );
}
