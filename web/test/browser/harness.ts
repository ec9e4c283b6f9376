// What the browser tests share: Chromium (Debian's, driven by playwright-core), the viewer's
// address (the real server's, or Vite's preview server over web/dist), the demo log and
// screenshots.

import { mkdtempSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { preview, type PreviewServer } from 'vite';

export const WEB_DIR = resolve(import.meta.dirname, '../..');
export const REPO_DIR = resolve(WEB_DIR, '..');
export const SCREENSHOT_DIR = process.env['SCREENSHOT_DIR'] ?? join(REPO_DIR, 'test-output', 'screenshots');

/** The demo log (`perpetua demo --out FILE`), written by scripts/test-web.sh. */
export function demoLogPath(): string {
  const path = process.env['DEMO_LOG'];
  if (!path) throw new Error('DEMO_LOG is not set: run scripts/test-web.sh');
  return path;
}

export interface StoredLine {
  position: number;
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  version: number;
  timestamp: string;
  payload: Record<string, unknown>;
  metadata: { userId: string | null; correlationId: string | null; causationId: string | null };
}

export function readLog(path: string): { lines: string[]; events: StoredLine[] } {
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  return { lines, events: lines.map((l) => JSON.parse(l) as StoredLine) };
}

/** Debian's Chromium with a fresh profile, headless. */
export async function launch(): Promise<BrowserContext> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'perpetua-chromium-'));
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env['CHROMIUM'] ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1440, height: 900 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Where the viewer is served: PERPETUA_URL (the real server) or a preview server over web/dist. */
export async function viewerUrl(): Promise<{ url: string; close(): Promise<void> }> {
  const server = process.env['PERPETUA_URL'];
  if (server) return { url: server.replace(/\/$/, ''), close: async () => {} };
  const previewServer: PreviewServer = await preview({
    root: WEB_DIR,
    logLevel: 'warn',
    preview: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  const url = previewServer.resolvedUrls?.local[0];
  if (!url) throw new Error('the preview server has no address');
  return { url: url.replace(/\/$/, ''), close: () => previewServer.close() };
}

export async function newPage(browser: BrowserContext): Promise<Page> {
  const page = await browser.newPage();
  page.setDefaultTimeout(10_000);
  page.on('pageerror', (error) => {
    throw error;
  });
  return page;
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`) });
}

/** Opens a log file in the viewer through its file input, as a user does, and waits until
 * the viewer has loaded it (or said it cannot). */
export async function openFile(page: Page, path: string): Promise<void> {
  await page.locator('input[type=file]').setInputFiles(path);
  const name = basename(path);
  await page.waitForFunction(
    (file) => {
      const source = document.querySelector('.source')?.textContent ?? '';
      return source.includes(file) && !source.startsWith('Loading');
    },
    name,
    { timeout: 60_000 },
  );
}

/** The text of the value on the state pane's line for `path` (e.g. `/state/size`). */
export async function stateValue(page: Page, path: string): Promise<string> {
  const text = await page.locator(`.state-pane .json-line[data-path="${path}"] .json-value`).innerText();
  return JSON.parse(text) as string;
}
