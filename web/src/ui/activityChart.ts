// The exchange-wide timeline as stacked bars: events per interval by type (model/activity.ts).
// A bar opens the log filtered to its interval.

import type { Activity } from '../model/activity';
import { timeTickLabel } from '../model/chart';
import { formatCount, formatTime } from '../model/format';
import { h } from './dom';

const SVG = 'http://www.w3.org/2000/svg';
const BOX = { width: 1000, height: 110, left: 52, right: 8, top: 6, bottom: 20 };

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const element = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) element.setAttribute(key, String(value));
  return element;
}

export function activityChart(data: Activity, onPick: (fromMs: number, toMs: number) => void): HTMLElement {
  const root = svg('svg', {
    viewBox: `0 0 ${BOX.width} ${BOX.height}`,
    class: 'activity-chart',
    role: 'img',
    'aria-label': 'Events per interval, by type',
  });
  const plotWidth = BOX.width - BOX.left - BOX.right;
  const plotHeight = BOX.height - BOX.top - BOX.bottom;
  const barWidth = plotWidth / Math.max(1, data.counts.length);
  const perSecond = 1000 / data.bucketMs;
  const names = [...data.types, 'other'];
  data.counts.forEach((counts, i) => {
    const from = data.from + i * data.bucketMs;
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) return;
    const bar = svg('g', { class: 'activity-bar', 'data-from': from });
    let y = BOX.top + plotHeight;
    counts.forEach((count, slot) => {
      if (count === 0) return;
      const height = (count / data.peak) * plotHeight;
      y -= height;
      bar.append(
        svg('rect', {
          x: BOX.left + i * barWidth,
          y,
          width: Math.max(1, barWidth - 0.5),
          height,
          class: `act act-${slot === data.types.length ? 'other' : slot}`,
        }),
      );
    });
    const title = svg('title', {});
    const parts = counts.map((c, slot) => (c > 0 ? `${names[slot]} ${formatCount(c)}` : '')).filter(Boolean);
    title.textContent = `${formatTime(from)}: ${formatCount(total)} events (${parts.join(', ')})`;
    bar.append(title);
    bar.addEventListener('click', () => onPick(from, from + data.bucketMs - 1));
    root.append(bar);
  });
  const peakLabel = svg('text', { x: BOX.left - 6, y: BOX.top + 10, 'text-anchor': 'end', class: 'tick' });
  peakLabel.textContent = `${formatCount(Math.round(data.peak * perSecond * 100) / 100)}/s`;
  root.append(peakLabel);
  const span = data.counts.length * data.bucketMs;
  const every = Math.max(1, Math.ceil(data.counts.length / 6));
  for (let i = 0; i < data.counts.length; i += every) {
    const label = svg('text', {
      x: BOX.left + i * barWidth,
      y: BOX.height - 5,
      class: 'tick',
    });
    label.textContent = timeTickLabel(data.from + i * data.bucketMs, data.bucketMs * every, span);
    root.append(label);
  }
  const legend = h(
    'div',
    { class: 'activity-legend' },
    ...names.map((name, slot) =>
      h('span', {}, h('span', { class: `swatch act-${slot === data.types.length ? 'other' : slot}` }), ` ${name}`),
    ),
    h('span', {
      class: 'hint',
      text: ` · bars of ${formatBucket(data.bucketMs)}, peak ${formatCount(data.peak)} events · click a bar to list its events`,
    }),
  );
  return h('div', { class: 'activity' }, root as unknown as HTMLElement, legend);
}

function formatBucket(ms: number): string {
  if (ms >= 86_400_000) return `${ms / 86_400_000} d`;
  if (ms >= 3_600_000) return `${ms / 3_600_000} h`;
  if (ms >= 60_000) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}
