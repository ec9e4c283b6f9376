// The viewer connected to the real server (`perpetua serve --demo`, started by
// scripts/test-web.sh): the auditor token loads the whole log, which verifies in the browser;
// the liquidated position is found by its id; new events written through the API arrive by
// the live tail and the badge verifies them too; a wrong token is refused with the server's
// error; a reload reconnects with the token kept in the tab; a stream exported by the
// server opens as a file and verifies event by event; the whole log exported by the server
// opens under its signed checkpoint, and the same file with its tail cut off is refused
// against that checkpoint.

import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launch, newPage, openFile, screenshot, stateValue, type StoredLine } from './harness';

const url = process.env['PERPETUA_URL'];
const auditorToken = process.env['AUDITOR_TOKEN'];
const adminToken = process.env['PERPETUA_ADMIN_TOKEN'];
// With a server to test (PERPETUA_URL), both tokens must be there: a missing one fails the
// run instead of skipping these tests.
const live = Boolean(url);

async function api(path: string, token: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return path.startsWith('/v1/export') ? text : (JSON.parse(text) as unknown);
}

/** How an export's signed checkpoint line starts (docs/AUDIT.md §10). */
const CHECKPOINT_LINE = '{"checkpoint":';

async function exported(): Promise<StoredLine[]> {
  const text = (await api('/v1/export', auditorToken ?? '')) as string;
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith(CHECKPOINT_LINE))
    .map((l) => JSON.parse(l) as StoredLine);
}

async function connect(page: Page, token: string): Promise<void> {
  await page.locator('#connect').click();
  await page.locator('input[aria-label="Auditor token"]').fill(token);
  await page.locator('.connect-dialog button[type=submit]').click();
}

describe.skipIf(!live)('connected to perpetua serve --demo', () => {
  let browser: BrowserContext;
  let page: Page;
  let events: StoredLine[] = [];

  beforeAll(async () => {
    if (!auditorToken || !adminToken)
      throw new Error('PERPETUA_URL is set but AUDITOR_TOKEN or PERPETUA_ADMIN_TOKEN is not');
    events = await exported();
    browser = await launch();
    page = await newPage(browser);
    await page.goto(`${url}/`);
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('refuses a wrong token with the server error', async () => {
    await connect(page, 'not-a-token');
    await expect.poll(() => page.locator('.connect-message').innerText()).toMatch(/UNAUTHORIZED|401|token/i);
    await page.locator('.connect-dialog button', { hasText: 'Cancel' }).click();
  });

  it('loads the log with the auditor token and verifies it in the browser', async () => {
    await connect(page, auditorToken ?? '');
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Chain verified');
    expect(await page.locator('#badge').innerText()).toContain(`${events.length.toLocaleString('en-US')} events`);
    await expect.poll(() => page.locator('.source').getAttribute('data-live')).toBe('on');
  });

  it('finds the liquidated position by its id and shows its state at two versions', async () => {
    const liquidation = events.find((e) => e.eventType === 'PositionLiquidated');
    const opened = events.find((e) => e.aggregateId === liquidation?.aggregateId && e.version === 1);
    if (!liquidation || !opened) throw new Error('the demo data has a liquidated position');
    await page.locator('#search').fill(`position:${liquidation.aggregateId}`);
    await page.locator('#search').press('Enter');
    await expect.poll(() => page.locator('.stream-title').innerText()).toBe(`Position ${liquidation.aggregateId}`);
    await expect
      .poll(() => page.locator('.state-pane h3').textContent())
      .toContain(`State at version ${liquidation.version}`);
    expect(Number(await stateValue(page, '/state/size'))).toBe(0);
    await page.locator('.timeline').focus();
    await page.keyboard.press('ArrowUp');
    await expect
      .poll(() => page.locator('.state-pane h3').textContent())
      .toContain(`State at version ${liquidation.version - 1}`);
    expect(await stateValue(page, '/state/size')).toBe(opened.payload['size']);
  });

  it('follows new events live and verifies them too', async () => {
    await page.locator('.tab[data-tab=log]').click();
    await page.locator('.log-list').focus();
    await page.keyboard.press('End');
    const created = (await api('/v1/users', adminToken ?? '', { name: 'late-trader', role: 'trader' })) as {
      accountId: string;
    };
    await api(`/v1/accounts/${created.accountId}/deposits`, adminToken ?? '', { amount: '2500' });
    const after = await exported();
    expect(after.length).toBeGreaterThan(events.length);
    const total = after.length.toLocaleString('en-US');
    await expect.poll(() => page.locator('.log-view .caption').innerText()).toContain(`of ${total} events`);
    await expect.poll(() => page.locator('#badge').innerText()).toContain(`${total} events`);
    expect(await page.locator('#badge').innerText()).toContain('Chain verified');
    expect(await page.locator('.source').innerText()).toMatch(/Live: \+\d+ events/);
    // The list stayed at its end: the deposit, the last event, is on screen.
    const lastRow = page.locator(`.log-list .vlist-row[data-index="${after.length - 1}"]`);
    await expect.poll(() => lastRow.innerText()).toContain('BalanceDeposited');
    const [rowBox, listBox] = await Promise.all([lastRow.boundingBox(), page.locator('.log-list').boundingBox()]);
    if (!rowBox || !listBox) throw new Error('the list and its last row have boxes');
    expect(rowBox.y).toBeGreaterThanOrEqual(listBox.y);
    expect(rowBox.y + rowBox.height).toBeLessThanOrEqual(listBox.y + listBox.height + 1);
    await screenshot(page, '08-live');
    await page.locator('#search').fill(created.accountId);
    await page.locator('#search').press('Enter');
    await expect.poll(() => page.locator('.account-view .facts').innerText()).toContain('2500');

    // A stream view on the last version follows the stream as it grows.
    await page.evaluate((id) => {
      location.hash = `#/stream/Account/${id}`;
    }, created.accountId);
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 2');
    await api(`/v1/accounts/${created.accountId}/deposits`, adminToken ?? '', { amount: '100' });
    await expect.poll(() => page.locator('.state-pane h3').textContent()).toContain('State at version 3');
    expect(Number(await stateValue(page, '/state/balance'))).toBe(2600);
    expect(await page.locator('.changes td.new').allInnerTexts()).toContain('2600');
  });

  it('reconnects after a reload with the token kept in the tab', async () => {
    await page.reload();
    await expect.poll(() => page.locator('#badge').innerText(), { timeout: 15_000 }).toContain('Chain verified');
    await expect.poll(() => page.locator('.source').getAttribute('data-live')).toBe('on');
  });

  it('opens a stream exported by the server and verifies each of its events', async () => {
    const liquidation = events.find((e) => e.eventType === 'PositionLiquidated');
    if (!liquidation) throw new Error('the demo data has a liquidated position');
    const query = `aggregateType=Position&aggregateId=${liquidation.aggregateId}`;
    const text = (await api(`/v1/export?${query}`, auditorToken ?? '')) as string;
    const path = join(mkdtempSync(join(tmpdir(), 'perpetua-export-')), 'position.jsonl');
    writeFileSync(path, text);
    await openFile(page, path);
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Events verified');
    expect(await page.locator('#badge').innerText()).toContain(`${liquidation.version} events of one stream`);
  });

  it('opens the server export under its checkpoint, and refuses it with its tail cut off', async () => {
    const text = (await api('/v1/export', auditorToken ?? '')) as string;
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    const checkpoint = lines.at(-1) ?? '';
    expect(checkpoint.startsWith(CHECKPOINT_LINE)).toBe(true);
    const { treeSize, keyId } = (JSON.parse(checkpoint) as { checkpoint: { treeSize: number; keyId: string } })
      .checkpoint;
    expect(treeSize).toBe(lines.length - 1);
    const dir = mkdtempSync(join(tmpdir(), 'perpetua-checkpoint-'));
    const whole = join(dir, 'whole.jsonl');
    writeFileSync(whole, text);
    await openFile(page, whole);
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Chain verified');
    expect(await page.locator('#badge').innerText()).toContain(`key ${keyId}`);
    // The last three events removed, the checkpoint kept: the chain alone still verifies.
    const cut = join(dir, 'cut.jsonl');
    writeFileSync(cut, [...lines.slice(0, -4), checkpoint].join('\n') + '\n');
    await openFile(page, cut);
    await expect.poll(() => page.locator('#badge').innerText()).toContain('Export cut short of its checkpoint');
    const badge = await page.locator('#badge').innerText();
    expect(badge).toContain(`covers ${treeSize.toLocaleString('en-US')} events`);
    expect(badge).toContain(`ends at position ${(treeSize - 3).toLocaleString('en-US')}`);
    expect(await page.locator('#badge').getAttribute('data-tone')).toBe('bad');
    await screenshot(page, '09-truncated');
  });

  it("verifies an order's receipt from the file alone, under the signer's key only", async () => {
    const placed = events.find((e) => e.eventType === 'OrderPlaced');
    if (!placed) throw new Error('the demo places orders');
    const response = await fetch(`${url}/v1/orders/${placed.aggregateId}/receipt`, {
      headers: { Authorization: `Bearer ${auditorToken ?? ''}` },
    });
    expect(response.status).toBe(200);
    // The receipt as served, byte for byte: re-serialized JSON would reorder its payloads.
    const text = await response.text();
    const { checkpoint } = JSON.parse(text) as { checkpoint: { publicKey: string; keyId: string } };
    const dir = mkdtempSync(join(tmpdir(), 'perpetua-receipt-'));
    writeFileSync(join(dir, 'receipt.json'), text);
    await openFile(page, join(dir, 'receipt.json'));
    await expect.poll(() => page.locator('.receipt-result').getAttribute('data-result')).toBe('ok');
    expect(await page.locator('.receipt-result').innerText()).toContain(`by key ${checkpoint.keyId}`);
    await expect.poll(() => page.locator('.receipt-events').innerText()).toContain('✓ lead to the root');
    expect(await page.locator('#badge').innerText()).toContain('Receipt verified');
    // Trusting only another key (RFC 8032's second test key), the same receipt is refused.
    const key = page.locator('input[aria-label="Trusted public key"]');
    await key.fill('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
    await page.locator('.receipt-view button', { hasText: 'Check again' }).click();
    await expect.poll(() => page.locator('.receipt-result').getAttribute('data-result')).toBe('bad');
    await key.fill(checkpoint.publicKey);
    await page.locator('.receipt-view button', { hasText: 'Check again' }).click();
    await expect.poll(() => page.locator('.receipt-result').getAttribute('data-result')).toBe('ok');
    await screenshot(page, '10-receipt');
    // One digit of an event's payload changed: its inclusion proof no longer holds.
    const forged = text.replace(/"quantity":"(\d)/, (_, digit: string) => `"quantity":"${(Number(digit) + 1) % 10}`);
    expect(forged).not.toBe(text);
    writeFileSync(join(dir, 'forged.json'), forged);
    await openFile(page, join(dir, 'forged.json'));
    await expect.poll(() => page.locator('.receipt-result').getAttribute('data-result')).toBe('bad');
    expect(await page.locator('#badge').innerText()).toContain('Receipt does not verify');
  });
});
