// A server that rewrites history, caught by an auditor who only watches the live tail. The
// viewer follows a real `perpetua serve` (PERPETUA_BIN) and accepts its signed checkpoint;
// the server is then replaced, on the same address, by one holding a copy of its store from
// before its last event, with another event in its place, signed with the same key. Its new
// checkpoint has the same size and another root: the viewer's consistency check refuses it.

import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { launch, newPage, WEB_DIR } from './harness';

const bin = process.env['PERPETUA_BIN'];
const adminToken = 'rewrite-test-admin-token-0123456789abcdef';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `perpetua serve` on the SQLite store in `dir`, listening on `port`, until stopped. */
async function serve(dir: string, port: number, demo: boolean): Promise<ChildProcess> {
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--database-url', `sqlite://${join(dir, 'store.db')}`];
  args.push('--web-dir', join(WEB_DIR, 'dist'), '--checkpoint-every-ms', '0', ...(demo ? ['--demo'] : []));
  const child = spawn(bin ?? 'perpetua', args, {
    cwd: dir,
    env: { ...process.env, PERPETUA_ADMIN_TOKEN: adminToken },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.includes('listening on http://')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`perpetua serve exited (${code}): ${output}`)));
  });
  child.removeAllListeners('exit');
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function api(port: number, path: string, token: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status} ${text}`);
  return JSON.parse(text) as unknown;
}

/** Sets BTCUSDT's mark price `delta` above its current one (one event), then signs the head. */
async function markAndSign(port: number, delta: number): Promise<{ treeSize: number; rootHash: string }> {
  const markets = (await api(port, '/v1/markets', adminToken)) as {
    data: { symbol: string; markPrice: string | null }[];
  };
  const btc = markets.data.find((m) => m.symbol === 'BTCUSDT');
  const price = (Number(btc?.markPrice ?? '50000') + delta).toFixed(2);
  await api(port, '/v1/markets/BTCUSDT/mark-price', adminToken, { price });
  return (await api(port, '/v1/audit/checkpoints', adminToken, {})) as { treeSize: number; rootHash: string };
}

describe.skipIf(!bin)('a server that rewrites history under the live tail', () => {
  let browser: BrowserContext | null = null;
  let server: ChildProcess | null = null;

  afterAll(async () => {
    await browser?.close();
    if (server) await stop(server);
  });

  it('is caught by the consistency check of its next checkpoint', async () => {
    const honest = mkdtempSync(join(tmpdir(), 'perpetua-honest-'));
    const port = await freePort();
    server = await serve(honest, port, true);
    const auditor = (await api(port, '/v1/users', adminToken, { name: 'auditor', role: 'auditor' })) as {
      apiToken: string;
    };
    await api(port, '/v1/audit/checkpoints', adminToken, {});
    await stop(server);
    // The copy the rewrite starts from: the store as it is now, its signing key with it.
    const forked = mkdtempSync(join(tmpdir(), 'perpetua-forked-'));
    cpSync(honest, forked, { recursive: true });

    server = await serve(honest, port, false);
    const seen = await markAndSign(port, 1);
    browser = await launch();
    const page: Page = await newPage(browser);
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.locator('#connect').click();
    await page.locator('input[aria-label="Auditor token"]').fill(auditor.apiToken);
    await page.locator('.connect-dialog button[type=submit]').click();
    await expect.poll(() => page.locator('#badge').innerText(), { timeout: 30_000 }).toContain('Chain verified');
    await expect
      .poll(() => page.locator('#badge').innerText(), { timeout: 15_000 })
      .toContain(`live: the checkpoint of ${seen.treeSize} events`);

    // The same address now serves another history of the same length, under the same key.
    await stop(server);
    server = await serve(forked, port, false);
    const rewritten = await markAndSign(port, 2);
    expect(rewritten.treeSize).toBe(seen.treeSize);
    expect(rewritten.rootHash).not.toBe(seen.rootHash);

    await expect.poll(() => page.locator('#badge').innerText(), { timeout: 30_000 }).toContain('History rewritten');
    expect(await page.locator('#badge').innerText()).toContain('another root');
    expect(await page.locator('#badge').getAttribute('data-tone')).toBe('bad');
    await page.locator('#report-button').click();
    await expect.poll(() => page.locator('.report-dialog .report-result').innerText()).toBe('HISTORY_REWRITTEN');
  });
});
