// A hand-drawn SVG step chart with its axes (the layout is computed in model/chart.ts).

import { type SeriesPoint, stepChart } from '../model/chart';
import { formatTick, formatTime } from '../model/format';

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

export function chartSvg(series: readonly SeriesPoint[], label: string, endMs: number): SVGSVGElement {
  const box = { width: 640, height: 200, left: 84, right: 12, top: 12, bottom: 28 };
  const layout = stepChart(series, box, endMs);
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
        formatTime(tick.value).slice(11, 19),
      ),
    );
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
