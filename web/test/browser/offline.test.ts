// The viewer with an exported file, offline: the demo log verifies; the liquidated position
// is found from the global log, its stream stepped through with the state checked at two
// versions; the causation and account views show the liquidation; a file with one payload
// altered is named by the badge.

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoLogPath, launch, newPage, openFile, readLog, screenshot, stateValue, viewerUrl } from './harness';

const demo = readLog(demoLogPath());
const liquidation = demo.events.find((e) => e.eventType === 'PositionLiquidated');
if (!liquidation) throw new Error('the demo log has no liquidation');
const positionEvents = demo.events.filter((e) => e.aggregateId === liquidation.aggregateId);
const opened = positionEvents[0];
if (!opened || opened.eventType !== 'PositionOpened') throw new Error('the position opens first');

let browser: BrowserContext;
let server: { url: string; close(): Promise<void> };
let page: Page;

beforeAll(async () => {
  server = await viewerUrl();
  browser = await launch();
  page = await newPage(browser);
  await page.goto(`${server.url}/`);
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('an exported demo log, offline', () => {
  it('starts on the page that opens a log', async () => {
    await expect.poll(() => page.locator('.home h2').first().innerText()).toBe('Open an exported log');
    await expect.poll(() => page.locator('.server-status').innerText()).not.toContain('Looking');
    expect(await page.locator('#badge').innerText()).toContain('No log loaded');
    await screenshot(page, '00-home');
  });

  it('loads and the badge says the chain verifies', async () => {
    await openFile(page, demoLogPath());
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Chain verified');
    expect(await page.locator('#badge').innerText()).toContain(`${demo.events.length.toLocaleString('en-US')} events`);
    await expect
      .poll(() => page.locator('.log-view .caption').innerText())
      .toContain(`of ${demo.events.length.toLocaleString('en-US')} events`);
    await screenshot(page, '01-log');
  });

  it('charts the activity of the whole log by type, a bar listing its events', async () => {
    await page.locator('.activity-toggle summary').click();
    const bars = page.locator('.activity-chart .activity-bar');
    await expect.poll(() => bars.count()).toBeGreaterThan(5);
    expect(await page.locator('.activity-legend').innerText()).toContain('OrderPlaced');
    await bars.first().click();
    await expect.poll(() => page.locator('.log-view .caption').innerText()).toContain('from');
    const caption = await page.locator('.log-view .caption').innerText();
    expect(caption).not.toContain(`${demo.events.length.toLocaleString('en-US')} of`);
    await screenshot(page, '01-activity');
    await page.locator('.activity-toggle summary').click();
    await page.locator('button', { hasText: 'Clear filters' }).click();
    await expect
      .poll(() => page.locator('.log-view .caption').innerText())
      .toContain(`${demo.events.length.toLocaleString('en-US')} of`);
  });

  it('fits 1280×720: no header control and no column of the list is cut', async () => {
    await page.setViewportSize({ width: 1280, height: 720 });
    const clipped = await page.evaluate(() => {
      const cut = (e: Element) => e.scrollWidth > e.clientWidth + 1;
      const header = document.querySelector('header.bar');
      const cells = Array.from(document.querySelectorAll('.log-list .vlist-row > span, .list-header > span'));
      const list = document.querySelector('.log-list')?.getBoundingClientRect();
      return [
        ...(header && cut(header) ? ['the header'] : []),
        ...cells.filter(cut).map((c) => `cell ${c.className}: ${c.textContent ?? ''}`),
        ...cells
          .filter((c) => list && c.getBoundingClientRect().right > list.right + 1)
          .map((c) => `cell ${c.className} past the list's edge`),
      ];
    });
    expect(clipped).toEqual([]);
    await screenshot(page, '01-log-1280x720');
    await page.setViewportSize({ width: 1440, height: 900 });
  });

  it('finds the liquidated position through the event type filter', async () => {
    await page.locator('select[aria-label="Event type"]').selectOption('PositionLiquidated');
    await expect.poll(() => page.locator('.log-list .vlist-row').count()).toBe(1);
    await page.locator('.log-list').focus();
    await page.keyboard.press('ArrowDown');
    await expect.poll(() => page.locator('.details-pane .event-type').innerText()).toBe('PositionLiquidated');
    const active = await page.locator('.log-list').getAttribute('aria-activedescendant');
    expect(await page.locator(`#${active}`).getAttribute('aria-selected')).toBe('true');
    await screenshot(page, '02-log-filtered');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('.stream-title').innerText()).toBe(`Position ${liquidation.aggregateId}`);
  });

  it('steps through the stream and shows the state at two versions', async () => {
    // Opened at the liquidation's version: the last one.
    await expect
      .poll(() => page.locator('.state-pane h3').textContent())
      .toContain(`State at version ${liquidation.version}`);
    expect(await stateValue(page, '/state/symbol')).toBe('BTCUSDT');
    expect(Number(await stateValue(page, '/state/size'))).toBe(0);
    expect(await page.locator('.changes td.new').allInnerTexts()).not.toHaveLength(0);
    await screenshot(page, '03-stream-liquidated');

    await page.locator('.timeline').focus();
    await page.keyboard.press('Home');
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 1');
    expect(await stateValue(page, '/state/size')).toBe(opened.payload['size']);
    expect(await stateValue(page, '/state/marginMode')).toBe('ISOLATED');
    expect(await stateValue(page, '/state/accountId')).toBe(opened.payload['accountId']);
    await page.locator('.event-pane [data-section=data] summary').click();
    expect(await page.locator('.event-pane [data-section=data] .json').innerText()).toContain(
      String(opened.payload['entryPrice']),
    );
    await screenshot(page, '04-stream-opened');

    await page.locator('.timeline').focus();
    await page.keyboard.press('ArrowDown');
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 2');
    expect(await page.locator('.state-pane .json-line.changed').count()).toBeGreaterThan(0);
  });

  it('moves the "as of" slider to the time before the liquidation', async () => {
    const slider = page.locator('input[aria-label="As of time"]');
    const before = Date.parse(liquidation.timestamp) - 1;
    await slider.evaluate((input: HTMLInputElement, value) => {
      input.value = String(value);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }, before);
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 1');
    expect(await stateValue(page, '/state/size')).toBe(opened.payload['size']);
    // From the keyboard the slider steps from one event's time to the next.
    await slider.focus();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 2');
    expect(await page.locator('.as-of').innerText()).toBe(liquidation.timestamp.replace('T', ' ').replace('Z', ''));
  });

  it('shows everything the liquidating command caused, across streams', async () => {
    await page.locator('.timeline').focus();
    await page.keyboard.press('End');
    await page.locator('.stream-view button', { hasText: 'Everything this command caused' }).click();
    const caused = demo.events.filter((e) => e.metadata.causationId === liquidation.metadata.causationId);
    await expect
      .poll(() => page.locator('.causation-view .caption').innerText())
      .toContain(`${caused.length} events across`);
    const streams = new Set(caused.map((e) => `${e.aggregateType}/${e.aggregateId}`));
    expect(await page.locator('.stream-chip').count()).toBe(streams.size);
    await screenshot(page, '05-causation');
    // Navigable: Enter on an event opens its stream.
    await page.locator('.causation-list').focus();
    await page.keyboard.press('Enter');
    const first = caused[0];
    await expect
      .poll(() => page.locator('.stream-title').innerText())
      .toBe(`${first?.aggregateType} ${first?.aggregateId}`);
  });

  it('charts the balance and position sizes of the liquidated account', async () => {
    await page.locator('#search').fill(`account:${String(opened.payload['accountId'])}`);
    await page.locator('#search').press('Enter');
    await expect
      .poll(() => page.locator('.account-view h2').innerText())
      .toContain(String(opened.payload['accountId']));
    expect(await page.locator('.account-view svg.chart').count()).toBeGreaterThanOrEqual(2);
    const accountEvents = demo.events.filter((e) => e.aggregateId === opened.payload['accountId']);
    expect(await page.locator('.account-view svg.chart').first().locator('circle').count()).toBe(accountEvents.length);
    // Equity and realized PnL charted too, the liquidation marked on every chart.
    const captions = await page.locator('.account-view figcaption').allInnerTexts();
    expect(captions.some((c) => c.startsWith('Equity (USDT)'))).toBe(true);
    expect(captions.some((c) => c.startsWith('Realized PnL (USDT)'))).toBe(true);
    const marks = page.locator('.account-view svg.chart line[data-marker=LIQUIDATION]');
    expect(await marks.count()).toBe(await page.locator('.account-view svg.chart').count());
    expect(await marks.first().locator('title').textContent()).toContain(`position ${liquidation.position}`);
    // Zoomed in, every chart shows half the span; the whole span again after.
    const span = await page.locator('.chart-window').innerText();
    await page.locator('.chart-controls button', { hasText: 'Zoom in' }).click();
    await expect.poll(() => page.locator('.chart-window').innerText()).not.toBe(span);
    await page.locator('.chart-controls button', { hasText: 'Whole span' }).click();
    await expect.poll(() => page.locator('.chart-window').innerText()).toBe(span);
    // The read models as of just before the liquidation: the isolated position is open, with
    // its liquidation price; right after it, it is not.
    const readModelAt = async (position: number): Promise<void> => {
      await page.locator('input[aria-label="Read model at position"]').fill(String(position));
      await page.locator('input[aria-label="Read model at position"]').press('Enter');
    };
    await readModelAt(liquidation.position - 1);
    const row = page.locator(`.read-positions tr[data-position="${liquidation.aggregateId}"]`);
    await expect.poll(() => row.count()).toBe(1);
    expect(await row.locator('.liq').innerText()).toMatch(/^\d+\.\d{2}$/);
    await screenshot(page, '06-account');
    await readModelAt(liquidation.position);
    await expect.poll(() => row.count()).toBe(0);
    expect(await page.locator('.read-model').innerText()).toContain('No open position.');
  });

  it('finds a user and a correlation id from the search box', async () => {
    const userId = opened.metadata.userId;
    if (!userId) throw new Error('the opening order was placed by a user');
    await page.locator('#search').fill(userId);
    await page.locator('#search').press('Enter');
    const byUser = demo.events.filter((e) => e.metadata.userId === userId).length;
    await expect
      .poll(() => page.locator('.log-view .caption').innerText())
      .toContain(`${byUser.toLocaleString('en-US')} of`);
    await page.locator('#search').fill(String(opened.metadata.correlationId));
    await page.locator('#search').press('Enter');
    await expect
      .poll(() => page.locator('.causation-view h2').innerText())
      .toContain(String(opened.metadata.correlationId));
  });

  it("finds an order by the client's own order id", async () => {
    const named = demo.events.find(
      (e) => e.eventType === 'OrderPlaced' && typeof e.payload['clientOrderId'] === 'string',
    );
    if (!named) throw new Error('the demo names no order');
    const clientOrderId = String(named.payload['clientOrderId']);
    for (const query of [clientOrderId, `client:${clientOrderId}`]) {
      await page.locator('#search').fill(query);
      await page.locator('#search').press('Enter');
      await expect
        .poll(() => page.locator('.stream-view h2').first().innerText())
        .toContain(`Order ${named.aggregateId}`);
      expect(await page.locator('.search-message').innerText()).toBe('');
      await page.evaluate(() => (location.hash = '#/log'));
    }
    await page.locator('#search').fill('no-such-client-order');
    await page.locator('#search').press('Enter');
    await expect
      .poll(() => page.locator('.search-message').innerText())
      .toBe('no market and no client order id "no-such-client-order" in the loaded log');
  });
});

describe('an exported log with one payload altered', () => {
  it('is named by the badge: the position and the stream of the altered event', async () => {
    const lines = [...demo.lines];
    const at = opened.position - 1;
    const altered = (lines[at] ?? '').replace(`"size":"${String(opened.payload['size'])}"`, '"size":"0.200"');
    expect(altered).not.toBe(lines[at]);
    lines[at] = altered;
    const path = join(mkdtempSync(join(tmpdir(), 'perpetua-altered-')), 'altered.jsonl');
    writeFileSync(path, `${lines.join('\n')}\n`);
    await openFile(page, path);
    await expect
      .poll(() => page.locator('#badge').innerText())
      .toContain(`Chain broken at position ${opened.position}`);
    const badge = await page.locator('#badge').innerText();
    expect(badge).toContain('HASH_MISMATCH');
    expect(badge).toContain(`Position ${liquidation.aggregateId.slice(0, 8)}…${liquidation.aggregateId.slice(-4)} v1`);
    // The badge opens the bad event in the log.
    await page.locator('#badge button').click();
    await expect
      .poll(() => page.locator('.details-pane .envelope dd').first().innerText())
      .toBe(String(opened.position));
    expect(await page.locator('.details-pane [data-section=data] .json').innerText()).toContain('"size": "0.200"');

    // Its details say it does not verify, with the hash it carries and the one its bytes give.
    const stored = (JSON.parse(demo.lines[at] ?? '{}') as { hash: string }).hash;
    const notice = page.locator('.details-pane .trust-notice[data-trust=broken]');
    expect(await notice.innerText()).toContain('Does not verify');
    expect(await notice.locator('[data-hash=actual]').innerText()).toBe(stored);
    const expected = await notice.locator('[data-hash=expected]').innerText();
    expect(expected).toMatch(/^[0-9a-f]{64}$/);
    expect(expected).not.toBe(stored);

    // In the list: the event before is trusted, the bad one and every one after it are not.
    const rowAt = (position: number) =>
      page.locator('.log-list .vlist-row').filter({ has: page.locator(`.c-pos:text-is("${position}")`) });
    await expect.poll(() => rowAt(opened.position).getAttribute('data-trust')).toBe('broken');
    expect(await rowAt(opened.position - 1).getAttribute('data-trust')).toBeNull();
    expect(await rowAt(opened.position + 1).getAttribute('data-trust')).toBe('untrusted');
    await screenshot(page, '07-altered');

    // An event long after the break is untrusted too, whatever its own hash says.
    await page.evaluate((at) => (location.hash = `#/log?at=${at}`), liquidation.position);
    await expect
      .poll(() => page.locator('.details-pane .trust-notice[data-trust=untrusted]').innerText())
      .toContain(`breaks at position ${opened.position.toLocaleString('en-US')}`);

    // The stream view: its timeline marked, and the state folded past the break labelled.
    await page.locator('.details-pane button', { hasText: 'Open stream' }).click();
    await expect.poll(() => page.locator('.state-pane .trust-notice').innerText()).toContain('Folded past the break');
    expect(await page.locator('.timeline-column .vlist-row[data-trust]').count()).toBe(positionEvents.length);

    // The report: downloaded as JSON, with the break, the hashes and the head.
    await page.locator('#report-button').click();
    await expect.poll(() => page.locator('.report-dialog .report-result').innerText()).toBe('CHAIN_BROKEN');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.locator('.report-dialog a', { hasText: 'Download JSON' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^perpetua-verification-.*\.json$/);
    const report = JSON.parse(readFileSync(await download.path(), 'utf8')) as {
      result: string;
      head: { position: number };
      chain: { firstBadPosition: number; mismatch: { field: string; expected: string; actual: string } };
      events: { count: number };
    };
    expect(report.result).toBe('CHAIN_BROKEN');
    expect(report.chain.firstBadPosition).toBe(opened.position);
    expect(report.chain.mismatch).toEqual({ field: 'hash', expected, actual: stored });
    expect(report.events.count).toBe(demo.events.length);
    expect(report.head.position).toBe(demo.events.length);
    // Printed, the report is all there is on the page.
    await page.emulateMedia({ media: 'print' });
    expect(await page.locator('header.bar').isVisible()).toBe(false);
    expect(await page.locator('.report-dialog .report-json').isVisible()).toBe(true);
    await page.emulateMedia({ media: 'screen' });
    await page.keyboard.press('Escape');
  });
});

describe('a stream export (positions with gaps)', () => {
  it('verifies each event, and names an altered one', async () => {
    const lines = demo.lines.filter((_, i) => demo.events[i]?.aggregateId === liquidation.aggregateId);
    const dir = mkdtempSync(join(tmpdir(), 'perpetua-stream-'));
    writeFileSync(join(dir, 'stream.jsonl'), `${lines.join('\n')}\n`);
    await openFile(page, join(dir, 'stream.jsonl'));
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Events verified');
    expect(await page.locator('#badge').innerText()).toContain('2 events of one stream');
    await page.locator('#search').fill(liquidation.aggregateId);
    await page.locator('#search').press('Enter');
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 2');

    lines[1] = (lines[1] ?? '').replace('"markPrice":"', '"markPrice":"1');
    writeFileSync(join(dir, 'stream-altered.jsonl'), `${lines.join('\n')}\n`);
    await openFile(page, join(dir, 'stream-altered.jsonl'));
    await expect
      .poll(() => page.locator('#badge').innerText())
      .toContain(`Chain broken at position ${liquidation.position}`);
  });
});

describe('an exported log that no longer decodes', () => {
  it('is not loaded, and the badge still names the altered position from the chain alone', async () => {
    const lines = [...demo.lines];
    const at = liquidation.position - 1;
    lines[at] = (lines[at] ?? '').replace('"eventType":"PositionLiquidated"', '"eventType":"PositionForgiven"');
    const path = join(mkdtempSync(join(tmpdir(), 'perpetua-undecodable-')), 'undecodable.jsonl');
    writeFileSync(path, `${lines.join('\n')}\n`);
    await openFile(page, path);
    await expect
      .poll(() => page.locator('#badge').innerText())
      .toContain(`Chain broken at position ${liquidation.position}`);
    expect(await page.locator('.source').innerText()).toContain('Cannot load undecodable.jsonl');
    expect(await page.locator('.source').getAttribute('title')).toContain('PositionForgiven');
    expect(await page.locator('.home').isVisible()).toBe(true);
  });
});

describe('a file dropped on the page', () => {
  it('is opened like a chosen one', async () => {
    const text = demo.lines.join('\n');
    const dataTransfer = await page.evaluateHandle((content) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([content], 'dropped.jsonl', { type: 'application/x-ndjson' }));
      return transfer;
    }, text);
    await page.dispatchEvent('main', 'drop', { dataTransfer });
    await expect.poll(() => page.locator('.source').innerText()).toContain('dropped.jsonl');
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Chain verified');
  });
});
