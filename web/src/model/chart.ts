// A step chart of a value over time (balances and position sizes change at events and hold
// in between), as SVG path data. Values arrive as decimal strings; a chart needs only
// their approximate size, so they are read as numbers here (the exact values are shown in
// the tooltip and the state view).

import type * as Wasm from '../wasm/answers.gen';

/** `AuditLog.balanceSeries` and `positionSizeSeries` (generated: `web/src/wasm/answers.gen.ts`). */
export type SeriesPoint = Readonly<Wasm.Point>;

export interface Box {
  readonly width: number;
  readonly height: number;
  /** Room left for the axis labels. */
  readonly left: number;
  readonly bottom: number;
  readonly top: number;
  readonly right: number;
}

export interface Tick {
  readonly value: number;
  /** Pixel offset along its axis. */
  readonly at: number;
}

export interface StepChart {
  /** `M x y H x V y …`, or "" for an empty series. */
  readonly path: string;
  /** Pixel coordinates of each point (for markers and hit testing). */
  readonly points: readonly { readonly x: number; readonly y: number }[];
  readonly xTicks: readonly Tick[];
  readonly yTicks: readonly Tick[];
}

/** Round tick values covering `[min, max]`, about `count` of them (1, 2 or 5 × 10ⁿ apart). */
export function niceTicks(min: number, max: number, count: number): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [];
  if (min === max) return [min];
  const [low, high] = min < max ? [min, max] : [max, min];
  const rough = (high - low) / Math.max(1, count);
  const magnitude = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) {
    ticks.push(Number(v.toPrecision(12)));
  }
  return ticks;
}

/** A span of time shown by a chart, in milliseconds since the epoch. */
export interface TimeWindow {
  readonly from: number;
  readonly to: number;
}

/** Lays out a step chart of `series` in `box`; the last value holds until `endMs`. With a
 * `window`, only that span is shown (the value holding at its start drawn from its start). */
export function stepChart(series: readonly SeriesPoint[], box: Box, endMs: number, window?: TimeWindow): StepChart {
  const shown = window ? clipSeries(series, window) : series;
  if (shown.length === 0) return { path: '', points: [], xTicks: [], yTicks: [] };
  const values = shown.map((p) => Number(p.value));
  const first = window?.from ?? shown[0]?.timestamp ?? 0;
  const last = window?.to ?? Math.max(endMs, shown[shown.length - 1]?.timestamp ?? first);
  const yTickValues = niceTicks(Math.min(0, ...values), Math.max(0, ...values), 4);
  const yMin = Math.min(...yTickValues, ...values, 0);
  const yMax = Math.max(...yTickValues, ...values, 0);
  const plotWidth = box.width - box.left - box.right;
  const plotHeight = box.height - box.top - box.bottom;
  const x = (ms: number): number => box.left + (last === first ? 0 : ((ms - first) / (last - first)) * plotWidth);
  const y = (v: number): number =>
    box.top + (yMax === yMin ? plotHeight / 2 : ((yMax - v) / (yMax - yMin)) * plotHeight);
  const points = shown.map((p, i) => ({ x: round(x(p.timestamp)), y: round(y(values[i] ?? 0)) }));
  let path = '';
  points.forEach((p, i) => {
    path += i === 0 ? `M${p.x} ${p.y}` : `H${p.x}V${p.y}`;
  });
  path += `H${round(x(last))}`;
  const xTicks = timeTicks(first, last, 4).map((value) => ({ value, at: round(x(value)) }));
  const yTicks = yTickValues.map((value) => ({ value, at: round(y(value)) }));
  return { path, points, xTicks, yTicks };
}

const DAY = 86_400_000;

/** The points of `series` inside `window`, the one holding at its start moved to its start. */
export function clipSeries(series: readonly SeriesPoint[], window: TimeWindow): SeriesPoint[] {
  const inside = series.filter((p) => p.timestamp >= window.from && p.timestamp <= window.to);
  const before = series.filter((p) => p.timestamp < window.from).at(-1);
  return before ? [{ ...before, timestamp: window.from }, ...inside] : inside;
}

/** `window` zoomed by `factor` (< 1 zooms in) around the point `anchor` (0 = its start, 1 =
 * its end) stays put, kept within `bounds` and never shorter than a millisecond. */
export function zoomWindow(window: TimeWindow, factor: number, anchor: number, bounds: TimeWindow): TimeWindow {
  const span = Math.max(1, Math.min(bounds.to - bounds.from, (window.to - window.from) * factor));
  const at = window.from + (window.to - window.from) * Math.min(1, Math.max(0, anchor));
  return clampWindow({ from: at - span * anchor, to: at - span * anchor + span }, bounds);
}

/** `window` moved by `deltaMs`, kept within `bounds`. */
export function panWindow(window: TimeWindow, deltaMs: number, bounds: TimeWindow): TimeWindow {
  return clampWindow({ from: window.from + deltaMs, to: window.to + deltaMs }, bounds);
}

function clampWindow(window: TimeWindow, bounds: TimeWindow): TimeWindow {
  const span = Math.min(window.to - window.from, bounds.to - bounds.from);
  const from = Math.min(Math.max(window.from, bounds.from), bounds.to - span);
  return { from, to: from + span };
}

/** A tick's label: the date for ticks a day or more apart, the date and minute when the span
 * crosses days, else the time (to the second when ticks are under a minute apart). UTC. */
export function timeTickLabel(ms: number, stepMs: number, spanMs: number): string {
  const iso = new Date(ms).toISOString();
  if (stepMs >= DAY) return iso.slice(0, 10);
  if (spanMs > DAY) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return stepMs >= 60_000 ? iso.slice(11, 16) : iso.slice(11, 19);
}

/** The distance between the ticks `timeTicks` picks for this span. */
export function timeTickStep(first: number, last: number, count: number): number {
  const steps = [1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600, 43200].map((s) => s * 1000);
  const days = [1, 2, 7, 14, 30, 91, 182, 365].map((d) => d * DAY);
  const rough = (last - first) / Math.max(1, count);
  return [...steps, ...days].find((s) => s >= rough) ?? Math.ceil(rough / (365 * DAY)) * 365 * DAY;
}

/** About `count` tick times between `first` and `last`, on round seconds, minutes, hours or
 * days (UTC midnights). */
export function timeTicks(first: number, last: number, count: number): number[] {
  if (last <= first) return [first];
  const step = timeTickStep(first, last, count);
  const ticks: number[] = [];
  for (let t = Math.ceil(first / step) * step; t <= last; t += step) ticks.push(t);
  return ticks;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
