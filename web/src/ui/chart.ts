// A hand-drawn SVG step chart with its axes (the layout is computed in model/chart.ts),
// optionally of one time window, with events (liquidations, funding) marked on it.

import { type SeriesPoint, stepChart, timeTickLabel, timeTickStep, type TimeWindow } from '../model/chart';
import { formatTick, formatTime } from '../model/format';
import type * as Wasm from '../wasm/answers.gen';

export type Marker = Readonly<Wasm.Marker>;

export interface ChartOptions {
  /** The span shown (all of the series when absent). */
  readonly window?: TimeWindow;
  /** Events drawn as vertical lines, their label on hover. */
  readonly markers?: readonly Marker[];
}

const SVG = 'http://www.w3.org/2000/svg';
const MAX_DOTS = 400;

function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number>,
  text?: string,
): SVGElementTagNameMap[K] {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

export const CHART_BOX = { width: 640, height: 200, left: 84, right: 12, top: 12, bottom: 28 } as const;

export function chartSvg(
  series: readonly SeriesPoint[],
  label: string,
  endMs: number,
  options: ChartOptions = {},
): SVGSVGElement {
  const box = CHART_BOX;
  const layout = stepChart(series, box, endMs, options.window);
  const from = options.window?.from ?? series[0]?.timestamp ?? 0;
  const to = options.window?.to ?? Math.max(endMs, series.at(-1)?.timestamp ?? from);
  const step = timeTickStep(from, to, 4);
  const root = svg('svg', {
    viewBox: `0 0 ${box.width} ${box.height}`,
    class: 'chart',
    role: 'img',
    'aria-label': label,
  });
  const plotBottom = box.height - box.bottom;
  for (const tick of layout.yTicks) {
    root.append(
      svg('line', {
        x1: box.left,
        x2: box.width - box.right,
        y1: tick.at,
        y2: tick.at,
        class: tick.value === 0 ? 'axis zero' : 'grid',
      }),
      svg('text', { x: box.left - 6, y: tick.at + 4, 'text-anchor': 'end', class: 'tick' }, formatTick(tick.value)),
    );
  }
  for (const tick of layout.xTicks) {
    root.append(
      svg('line', { x1: tick.at, x2: tick.at, y1: box.top, y2: plotBottom, class: 'grid' }),
      svg(
        'text',
        { x: tick.at, y: box.height - 8, 'text-anchor': 'middle', class: 'tick' },
        timeTickLabel(tick.value, step, to - from),
      ),
    );
  }
  const plotWidth = box.width - box.left - box.right;
  for (const marker of options.markers ?? []) {
    if (marker.timestamp < from || marker.timestamp > to || to <= from) continue;
    const x = box.left + ((marker.timestamp - from) / (to - from)) * plotWidth;
    const line = svg('line', {
      x1: x,
      x2: x,
      y1: box.top,
      y2: plotBottom,
      class: `marker marker-${marker.kind}`,
      'data-marker': marker.kind,
    });
    line.append(svg('title', {}, `${marker.label} at ${formatTime(marker.timestamp)} (position ${marker.position})`));
    root.append(line);
  }
  root.append(svg('line', { x1: box.left, x2: box.left, y1: box.top, y2: plotBottom, class: 'axis' }));
  root.append(svg('path', { d: layout.path, class: 'series' }));
  // A dot (with its exact value on hover) per point while they can be told apart; beyond
  // that the line alone (thousands of dots would only slow the page).
  if (layout.points.length > MAX_DOTS) return root;
  layout.points.forEach((p, i) => {
    const point = series[i];
    if (!point) return;
    const dot = svg('circle', { cx: p.x, cy: p.y, r: 2.5, class: 'dot' });
    dot.append(svg('title', {}, `${point.value} at ${formatTime(point.timestamp)} (position ${point.position})`));
    root.append(dot);
  });
  return root;
}
