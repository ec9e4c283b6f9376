// The viewer's browser figures (BENCHMARKS.md, "Audit viewer (browser)"), measured in
// Chromium on a long log: the first render after opening a 100,000-event file, the state at
// versions across a 10,000-event stream, and the chain verification. With
// VIEWER_BENCH_LARGE_LOG, a large log (1,000,000 events) opened: its progress, the page's
// long tasks, the chain verified in events/s; with VIEWER_BENCH_RECEIPT (`viewer_logs
// receipt`), a receipt's proofs and signature verified. Runs only when
// VIEWER_BENCH_LOG names the log (`viewer_logs workload 100000 FILE`) and
// VIEWER_BENCH_STREAM its busiest stream (`Type/id`, printed by viewer_logs); prints the
// figures and writes them to test-output/viewer-bench.json. Times are from the page's
// performance measures (src/ui/app.ts, streamView.ts).

import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, newPage, openFile, REPO_DIR, screenshot, viewerUrl } from './harness';

const logPath = process.env['VIEWER_BENCH_LOG'];
const streamKey = process.env['VIEWER_BENCH_STREAM'];
const RUNS = 3;
const figures: Record<string, unknown> = {};

afterAll(() => {
  if (Object.keys(figures).length === 0) return;
  const out = join(REPO_DIR, 'test-output');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'viewer-bench.json'), `${JSON.stringify(figures, null, 2)}\n`);
  console.log(JSON.stringify(figures, null, 2));
});

async function measures(page: Page, name: string): Promise<number[]> {
  return page.evaluate((n) => performance.getEntriesByName(n, 'measure').map((m) => m.duration), name);
}

const largeLog = process.env['VIEWER_BENCH_LARGE_LOG'];
const receiptPath = process.env['VIEWER_BENCH_RECEIPT'];

/** Records the page's long tasks (over 50 ms: the page could not answer meanwhile). */
async function recordLongTasks(page: Page): Promise<void> {
  await page.addInitScript(() => {
    const tasks: [number, number][] = [];
    (window as unknown as { longTasks: [number, number][] }).longTasks = tasks;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) tasks.push([Math.round(entry.startTime), Math.round(entry.duration)]);
    }).observe({ type: 'longtask', buffered: true });
  });
}

describe.skipIf(!largeLog)('viewer benchmark: a large log', () => {
  it('opens with progress shown, the page never held long, and verifies its chain', async () => {
    const server = await viewerUrl();
    const browser = await launch();
    try {
      const page = await newPage(browser);
      await recordLongTasks(page);
      await page.goto(`${server.url}/`);
      const progress: string[] = [];
      const watching = setInterval(() => {
        void page
          .locator('.source')
          .innerText()
          .then((t) => progress.push(t))
          .catch(() => undefined);
      }, 250);
      await openFile(page, largeLog ?? '');
      await expect.poll(() => page.locator('#badge').innerText(), { timeout: 600_000 }).toContain('Chain verified');
      clearInterval(watching);
      const events = Number(
        (await page.locator('.log-view .caption').innerText()).split(' of ')[1]?.replace(/[^0-9]/g, ''),
      );
      const longTasks = await page.evaluate(() => (window as unknown as { longTasks: [number, number][] }).longTasks);
      const loadStart = await page.evaluate(() => performance.getEntriesByName('load-start')[0]?.startTime ?? 0);
      const verify = (await measures(page, 'verify-chain'))[0] ?? NaN;
      figures['largeLog'] = {
        file: largeLog,
        bytes: statSync(largeLog ?? '').size,
        events,
        firstRenderMs: (await measures(page, 'first-render'))[0],
        parseMs: (await measures(page, 'parse-log'))[0],
        replaceLogMs: (await measures(page, 'replace-log'))[0],
        showViewMs: (await measures(page, 'show-view'))[0],
        verifyChainMs: verify,
        chainEventsPerSecond: Math.round(events / (verify / 1000)),
        verifiedMs: (await measures(page, 'verified'))[0],
        longTasks: longTasks.length,
        longestTaskMs: Math.max(0, ...longTasks.map(([, d]) => d)),
        longTasksOver100Ms: longTasks
          .filter(([, d]) => d > 100)
          .map(([start, d]) => `${d} ms at ${Math.round(start - loadStart)} ms after the file was chosen`),
        progressSeen: [...new Set(progress.filter((t) => t.startsWith('Loading')))].slice(0, 8),
      };
      await screenshot(page, '11-bench-large');
    } finally {
      await browser.close();
      await server.close();
    }
  });
});

describe.skipIf(!receiptPath)('viewer benchmark: a receipt', () => {
  it('verifies the inclusion proofs and the signature of a receipt', async () => {
    const server = await viewerUrl();
    const browser = await launch();
    try {
      const runs: number[] = [];
      const inclusion: number[] = [];
      for (let run = 0; run < 5; run += 1) {
        const page = await newPage(browser);
        await page.goto(`${server.url}/`);
        await openFile(page, receiptPath ?? '');
        await expect.poll(() => page.locator('.receipt-result').getAttribute('data-result')).toBe('ok');
        runs.push(...(await measures(page, 'verify-receipt')));
        await expect.poll(() => page.locator('.receipt-events').innerText()).toContain('✓ lead to the root');
        inclusion.push(...(await measures(page, 'verify-inclusion')));
        await page.close();
      }
      const receipt = JSON.parse(readFileSync(receiptPath ?? '', 'utf8')) as {
        checkpoint: { treeSize: number };
        events: { proof: string[] }[];
      };
      figures['receipt'] = {
        file: receiptPath,
        treeSize: receipt.checkpoint.treeSize,
        events: receipt.events.length,
        proofHashes: receipt.events[0]?.proof.length,
        verifyMsRuns: runs.map((r) => Math.round(r * 1000) / 1000),
        best: Math.min(...runs),
        perEventMs: Math.min(...runs) / receipt.events.length,
        inclusionProofMsRuns: inclusion.map((r) => Math.round(r * 1000) / 1000),
        inclusionProofWorstMs: Math.max(...inclusion),
      };
    } finally {
      await browser.close();
      await server.close();
    }
  });
});

describe.skipIf(!logPath || !streamKey)('viewer benchmark', () => {
  let browser: BrowserContext;
  let server: { url: string; close(): Promise<void> };

  beforeAll(async () => {
    server = await viewerUrl();
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('renders the first rows of a 100,000-event log', async () => {
    const path = logPath ?? '';
    const firstRender: number[] = [];
    const verified: number[] = [];
    const readFile: number[] = [];
    const parseLog: number[] = [];
    let page: Page | null = null;
    for (let run = 0; run < RUNS; run += 1) {
      await page?.close();
      page = await newPage(browser);
      await page.goto(`${server.url}/`);
      await openFile(page, path);
      await expect.poll(() => page?.locator('#badge').innerText(), { timeout: 60_000 }).toContain('Chain verified');
      firstRender.push(...(await measures(page, 'first-render')));
      verified.push(...(await measures(page, 'verified')));
      readFile.push(...(await measures(page, 'read-file')));
      parseLog.push(...(await measures(page, 'parse-log')));
    }
    if (!page) throw new Error('no page');
    const rows = await page.locator('.log-list .vlist-row').count();
    expect(rows).toBeGreaterThan(10);
    expect(rows).toBeLessThan(100);
    // Scrolling to the end renders the last rows, not all of them.
    await page.locator('.log-list').focus();
    await page.keyboard.press('End');
    await expect.poll(() => page?.locator('.details-pane dd').first().innerText()).toBe('100000');
    expect(await page.locator('.log-list .vlist-row').count()).toBeLessThan(100);
    figures['log'] = { file: path, bytes: statSync(path).size, events: 100_000 };
    figures['firstRenderMs'] = { runs: firstRender, best: Math.min(...firstRender), goal: 1000 };
    figures['verifiedMs'] = { runs: verified, best: Math.min(...verified) };
    figures['readFileMs'] = { runs: readFile, best: Math.min(...readFile) };
    figures['parseLogMs'] = { runs: parseLog, best: Math.min(...parseLog) };
    await screenshot(page, '09-bench-log');
    await page.close();
  });

  it('computes the state at versions across a 10,000-event stream', async () => {
    const [aggregateType, aggregateId] = (streamKey ?? '').split('/');
    const page = await newPage(browser);
    await page.goto(`${server.url}/`);
    await openFile(page, logPath ?? '');
    await expect.poll(() => page.locator('#badge').innerText(), { timeout: 60_000 }).toContain('Chain verified');
    await page.goto(`${server.url}/#/stream/${aggregateType}/${aggregateId}?v=1`);
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 1');
    const length = Number((await page.locator('.stream-header .caption').innerText()).replace(/[^0-9]/g, ''));
    expect(length).toBeGreaterThanOrEqual(10_000);
    const versions = [
      2,
      Math.floor(length / 4),
      Math.floor(length / 2),
      Math.floor((3 * length) / 4),
      length - 1,
      length,
    ];
    await page.evaluate(() => performance.clearMeasures('state-at-version'));
    for (const version of versions) {
      await page.evaluate(
        ([t, i, v]) => {
          location.hash = `#/stream/${t}/${i}?v=${v}`;
        },
        [aggregateType, aggregateId, String(version)],
      );
      await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain(`State at version ${version} `);
    }
    const durations = await measures(page, 'state-at-version');
    expect(durations).toHaveLength(versions.length);
    figures['stateAtVersionMs'] = {
      stream: streamKey,
      events: length,
      versions,
      runs: durations.map((d) => Math.round(d * 10) / 10),
      worst: Math.max(...durations),
      goal: 50,
    };
    await screenshot(page, '10-bench-stream');
    await page.close();
  });
});
