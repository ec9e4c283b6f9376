// The viewer's address: each view and its selection live in the URL's hash, so a view can be
// linked, reloaded with the same file, and left with the back button.
//
//   #/log?type=…&aggregate=…&from=…&to=…&user=…&at=<position>
//   #/stream/<AggregateType>/<id>?v=<version>
//   #/causation/<correlation|causation>/<id>
//   #/account/<id>

import { type AggregateType, isAggregateType, type StreamKey } from './columns';
import { filterFromParams, filterToParams, type LogFilter, NO_FILTER } from './filter';
import type { Target } from './search';

export type Route =
  | { readonly name: 'log'; readonly filter: LogFilter; readonly at: number | null }
  | { readonly name: 'stream'; readonly stream: StreamKey; readonly version: number | null }
  | { readonly name: 'causation'; readonly by: 'correlation' | 'causation'; readonly id: string }
  | { readonly name: 'account'; readonly accountId: string };

export function parseRoute(hash: string, eventTypeNames: readonly string[]): Route {
  const text = hash.replace(/^#\/?/, '');
  const [pathText = '', query = ''] = text.split('?', 2);
  const path = pathText
    .split('/')
    .filter((p) => p !== '')
    .map(decodeURIComponent);
  const params = new URLSearchParams(query);
  const [name, first, second] = path;
  if (name === 'stream' && first !== undefined && isAggregateType(first) && second !== undefined) {
    return {
      name: 'stream',
      stream: { aggregateType: first, aggregateId: second },
      version: positiveInt(params.get('v')),
    };
  }
  if (name === 'causation' && (first === 'correlation' || first === 'causation') && second !== undefined) {
    return { name: 'causation', by: first, id: second };
  }
  if (name === 'account' && first !== undefined) return { name: 'account', accountId: first };
  return { name: 'log', filter: filterFromParams(params, eventTypeNames), at: positiveInt(params.get('at')) };
}

export function routeToHash(route: Route): string {
  switch (route.name) {
    case 'log': {
      const params = filterToParams(route.filter);
      if (route.at !== null) params.set('at', String(route.at));
      const query = params.toString();
      return query === '' ? '#/log' : `#/log?${query}`;
    }
    case 'stream':
      return streamHash(route.stream.aggregateType, route.stream.aggregateId, route.version);
    case 'causation':
      return `#/causation/${route.by}/${encodeURIComponent(route.id)}`;
    case 'account':
      return `#/account/${encodeURIComponent(route.accountId)}`;
  }
}

export function streamHash(aggregateType: AggregateType, aggregateId: string, version: number | null = null): string {
  const base = `#/stream/${aggregateType}/${encodeURIComponent(aggregateId)}`;
  return version === null ? base : `${base}?v=${version}`;
}

function positiveInt(text: string | null): number | null {
  if (text === null || !/^\d{1,15}$/.test(text)) return null;
  const value = Number(text);
  return value >= 1 ? value : null;
}

/** The route that shows what a search found (null when it found nothing). */
export function routeOf(target: Target): Route | null {
  switch (target.view) {
    case 'stream':
      return { name: 'stream', stream: target.stream, version: null };
    case 'account':
      return { name: 'account', accountId: target.accountId };
    case 'causation':
      return { name: 'causation', by: target.by, id: target.id };
    case 'user':
      return { name: 'log', filter: { ...NO_FILTER, userId: target.userId }, at: null };
    case 'event':
      return { name: 'log', filter: NO_FILTER, at: target.position };
    case 'none':
      return null;
  }
}
